"""Every accelerator config key is documented: each key line of every shipped preset file (edge,
server and the variants in hero_lite/accel/presets/) names its source, and docs/accelerator.md has a
row for it with both main presets' values. Adding a key to `AccelConfig` without a preset line, a
source comment or a row in the docs, or shipping a preset with an undocumented key line, fails here."""

import dataclasses
import os
import re
import tomllib
from pathlib import Path

import pytest

from hero_lite.accel import AccelConfig, load_config
from hero_lite.accel.config import PRESETS, SECTIONS, preset_path

PRESET_DIR = Path(preset_path("edge")).parent
# every preset file that ships with the package: the main presets and the variants that start from one
SHIPPED = sorted(path.stem for path in PRESET_DIR.glob("*.toml"))

# the checkout (CI copies the tests out of it and says where it is)
SOURCE = Path(os.environ.get("HERO_LITE_SOURCE", Path(__file__).resolve().parents[2]))
DOC = SOURCE / "docs" / "accelerator.md"

# What a preset comment starts with: the kind of its source (edge.toml's header explains each).
SOURCES = ("HERO ", "NeuRex", "BitFusion code", "BitFusion synthesis", "CACTI", "Horowitz", "JEDEC",
           "Stillmaker & Baas")
KINDS = ("assumption: ", "inferred from ", "hero-lite") + SOURCES


def config_keys(config: AccelConfig) -> list[str]:
    """Dotted names of every field of AccelConfig and its sections, e.g. 'hash_engine.sram_banks'."""
    keys = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(value)]
        else:
            keys.append(f.name)
    return keys


def comment_of(line: str) -> str | None:
    """Text after the first '#' outside a quoted string, stripped; None without a comment."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[i + 1:].strip()
    return None


def preset_key_lines(text: str) -> dict[str, str | None]:
    """Dotted key -> its line's comment, for every `key = value` line of a TOML text."""
    out, section = {}, ""
    for line in text.splitlines():
        header = re.match(r"\s*\[\s*([\w.-]+)\s*\]", line)
        if header:
            section = header.group(1)
            continue
        key = re.match(r"\s*([\w-]+)\s*=", line)
        if key:
            out[f"{section}.{key.group(1)}" if section else key.group(1)] = comment_of(line)
    return out


def names_a_source(comment: str | None) -> bool:
    """The comment starts with a source kind and says something; 'inferred from X' must name X."""
    if comment is None or len(comment) < 20:
        return False
    if comment.startswith("inferred from "):
        return comment.removeprefix("inferred from ").startswith(SOURCES)
    return comment.startswith(KINDS)


def doc_rows() -> dict[str, list[str]]:
    """Key -> cells of its row in the configuration reference of docs/accelerator.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Configuration reference\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        row = re.match(r"\|\s*`([\w.]+)`\s*\|(.*)\|\s*$", line)
        if row:
            assert row.group(1) not in rows, f"docs/accelerator.md: {row.group(1)} has two rows"
            rows[row.group(1)] = [cell.strip() for cell in row.group(2).split("|")]
    return rows


def toml_literal(cell: str):
    """The value of a backquoted TOML literal cell, e.g. '`5.0e8`' -> 500000000.0."""
    assert cell.startswith("`") and cell.endswith("`"), cell
    return tomllib.loads(f"v = {cell.strip('`')}")["v"]


def preset_source_problems(text: str) -> list[str]:
    """What is wrong with a preset file's key lines; [] for a well-documented preset.

    A main preset (no `base`) writes every key of AccelConfig; a variant (`base = "edge"` or
    "server") writes a subset. Either way every key line carries a comment naming its source, and
    the line scan sees exactly the keys TOML parses (so no key escapes the check).
    """
    lines = preset_key_lines(text)
    data = tomllib.loads(text)
    parsed = []
    for section, values in data.items():
        parsed += [f"{section}.{key}" for key in values] if isinstance(values, dict) else [section]
    problems = []
    if sorted(lines) != sorted(parsed):
        problems.append(f"keys written in a form the check does not read: {sorted(set(parsed) ^ set(lines))}")
    keys = config_keys(AccelConfig())
    if "base" in data:
        if data["base"] not in PRESETS:
            problems.append(f"base = {data['base']!r}; valid: {', '.join(PRESETS)}")
        unknown = sorted(set(lines) - set(keys) - {"base"})
        if unknown:
            problems.append(f"unknown keys {unknown}")
    elif sorted(lines) != sorted(keys):
        problems.append(f"missing keys {sorted(set(keys) - set(lines))}, unknown keys {sorted(set(lines) - set(keys))}")
    bad = {key: comment for key, comment in lines.items() if not names_a_source(comment)}
    if bad:
        problems.append(f"key lines without a source comment (start with one of {KINDS}): {bad}")
    return problems


def test_the_main_presets_and_variants_all_ship():
    assert set(PRESETS) <= set(SHIPPED)
    assert len(SHIPPED) >= 7, SHIPPED  # edge, server and at least the five pre-registered variants


@pytest.mark.parametrize("name", SHIPPED)
def test_every_preset_key_line_names_its_source(name):
    text = (PRESET_DIR / f"{name}.toml").read_text()
    problems = preset_source_problems(text)
    assert not problems, f"{name}.toml: {problems}"
    data = tomllib.loads(text)
    if "base" not in data:
        for section, cls in SECTIONS.items():
            assert set(data[section]) == {f.name for f in dataclasses.fields(cls)}, section
    assert load_config(str(PRESET_DIR / f"{name}.toml")).name == name, f"{name}.toml: name is not the file's stem"


def test_the_preset_check_fails_on_an_undocumented_key():
    good = (PRESET_DIR / "edge.toml").read_text()
    assert preset_source_problems(good) == []
    # a key line without a source, a key missing from a main preset, an unknown key in a variant
    assert preset_source_problems(good.replace("# CACTI: the table's 32-bit port width", "# 32 bits"))
    assert preset_source_problems("\n".join(line for line in good.splitlines() if not line.startswith("ways =")))
    variant = 'base = "edge"  # hero-lite: the preset this file varies\n[dram]\n'
    assert preset_source_problems(variant + "queue_depth = 128 # assumption: twice the edge queue\n") == []
    assert preset_source_problems(variant + "queue_depth = 128\n")
    assert preset_source_problems(variant + "queue_dept = 128 # assumption: twice the edge queue\n")
    assert preset_source_problems('base = "edgy"  # hero-lite: the preset this file varies\n')
    # a key the line scan cannot see (inline table) is reported instead of passing unchecked
    assert preset_source_problems(variant.replace("[dram]\n", "") + "dram = {queue_depth = 128}  # assumption: x\n")


def test_the_source_rule_rejects_a_key_without_a_source():
    assert preset_key_lines('[dram]\nlatency_cycles = 50 # assumption: ~100 ns at 500 MHz\n') == \
        {"dram.latency_cycles": "assumption: ~100 ns at 500 MHz"}
    for line in ("latency_cycles = 50", "latency_cycles = 50 #", "latency_cycles = 50 # cycles",
                 "latency_cycles = 50 # the DRAM latency of the design in cycles",
                 "latency_cycles = 50 # inferred from the datasheet: 100 ns",
                 'bank_mapping = "word#mod"  ', "latency_cycles = 50 # default: fifty cycles of the DRAM"):
        (comment,) = preset_key_lines(line).values()
        assert not names_a_source(comment), line
    assert names_a_source(comment_of('bank_mapping = "a#b" # CACTI: the table\'s 32-bit port width'))
    assert names_a_source("inferred from Horowitz: 6 x 3.7 pJ fp32 mult + 5 x 0.9 pJ fp32 add")


def test_every_config_key_has_a_row_in_the_docs():
    rows = doc_rows()
    keys = config_keys(AccelConfig())
    missing = [key for key in keys if key not in rows]
    assert not missing, f"docs/accelerator.md: no row in the configuration reference for {missing}"
    stale = sorted(set(rows) - set(keys))
    assert not stale, f"docs/accelerator.md: rows for keys AccelConfig does not have: {stale}"


def test_the_docs_give_both_presets_values_and_a_unit_meaning_and_source():
    rows = doc_rows()
    presets = {name: load_config(name).to_dict() for name in PRESETS}
    for key, cells in rows.items():
        assert len(cells) == 5 and all(cells), f"docs/accelerator.md: {key}: edge | server | unit | meaning | source"
        for name, cell in zip(("edge", "server"), cells):
            value = presets[name]
            for part in key.split("."):
                value = value[part]
            assert toml_literal(cell) == value, f"docs/accelerator.md: {key} = {cell} for {name}, preset: {value!r}"
        source = cells[4]
        assert source.startswith(("edge: ",) + KINDS), f"docs/accelerator.md: {key}: source {source!r}"
