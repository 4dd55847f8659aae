"""AccelConfig: presets, round trips, config files and every bad-config case (the documentation of
every key: test_presets_documented.py)."""

import re
import tomllib

import pytest

from hero_lite.accel import AccelConfig, load_config
from hero_lite.accel.config import preset_path


def test_presets_load_and_edge_equals_the_defaults():
    edge, server = load_config("edge"), load_config("server")
    assert edge == AccelConfig()
    assert server.name == "server" and edge.name == "edge"
    # the server is bigger: more PEs, more SRAM, more bandwidth
    assert server.mlp_engine.arrays * server.mlp_engine.rows * server.mlp_engine.cols > \
        edge.mlp_engine.arrays * edge.mlp_engine.rows * edge.mlp_engine.cols
    assert server.hash_engine.grid_sram_kib > edge.hash_engine.grid_sram_kib and server.cache.kib > edge.cache.kib
    assert server.dram.bw_bytes_per_cycle * server.clock_hz > edge.dram.bw_bytes_per_cycle * edge.clock_hz
    # edge grid SRAM holds well under a quarter of the 8-bit tables (456,920 entries x 2 B)
    assert (edge.hash_engine.grid_sram_kib + edge.cache.kib) * 1024 < 0.25 * 456920 * 2


def test_round_trip_and_overrides():
    cfg = load_config("server")
    assert AccelConfig.from_dict(cfg.to_dict()) == cfg
    faster = cfg.with_overrides({"dram": {"bw_bytes_per_cycle": 512.0}})
    assert faster.dram.bw_bytes_per_cycle == 512.0 and faster.dram.latency_cycles == cfg.dram.latency_cycles


def test_unknown_keys_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown key\(s\) sram_bank;.*sram_banks"):
        AccelConfig.from_dict({"hash_engine": {"sram_bank": 4}})
    with pytest.raises(ValueError, match=r"unknown key\(s\) dramm;.*valid keys: .*dram"):
        AccelConfig.from_dict({"dramm": {}})


@pytest.mark.parametrize("overrides, key", [
    ({"hash_engine": {"sram_banks": 0}}, "hash_engine.sram_banks = 0; valid: integer in [1, 1024]"),
    ({"hash_engine": {"grid_sram_kib": -4.0}}, "hash_engine.grid_sram_kib"),
    ({"cache": {"kib": 0}}, "cache.kib"),
    ({"cache": {"line_bytes": 0}}, "cache.line_bytes"),
    ({"mlp_engine": {"rows": -1}}, "mlp_engine.rows"),
    ({"dram": {"bw_bytes_per_cycle": 0}}, "dram.bw_bytes_per_cycle"),
    ({"dram": {"latency_cycles": -1}}, "dram.latency_cycles"),
    ({"dram": {"queue_depth": 0}}, "dram.queue_depth"),
    ({"tile_samples": 0}, "tile_samples"),
    ({"fifo_depth": 0}, "fifo_depth"),
    ({"clock_hz": 0}, "clock_hz"),
    ({"sampler": {"steps_per_cycle": 0}}, "sampler.steps_per_cycle"),
    ({"vru": {"samples_per_cycle": 2.5}}, "vru.samples_per_cycle"),
    # impossible combinations
    ({"cache": {"kib": 1.0, "line_bytes": 64, "ways": 32}}, "cache.ways = 32; valid: <= 16 lines"),
    ({"cache": {"kib": 1.0, "line_bytes": 64, "ways": 3}}, "cache.ways = 3; valid: a divisor"),
    ({"cache": {"kib": 1.0, "line_bytes": 48}}, "cache.kib"),
    ({"mlp_engine": {"pmin": 16}}, "mlp_engine.pmin = 16; valid: <= pmax = 8"),
    ({"mlp_engine": {"pe_mode": "analog"}}, "mlp_engine.pe_mode"),
    ({"hash_engine": {"bank_mapping": "random"}}, "hash_engine.bank_mapping"),
    ({"hash_engine": {"grid_sram_kib": 0.01, "sram_banks": 64}}, "hash_engine.grid_sram_kib"),
    ({"area_mode": "huge"}, "area_mode"),
    ({"tech": {"sram_read_pj": [1.0, 2.0]}}, "tech.sram_read_pj"),
    ({"tech": {"sram_kib": [4.0, 2.0, 8.0, 16.0, 32.0, 64.0]}}, "tech.sram_kib"),
])
def test_bad_values_name_the_key(overrides, key):
    with pytest.raises(ValueError, match=re.escape(key)):
        AccelConfig.from_dict(overrides)


def test_every_bank_mapping_is_accepted_and_a_wrong_one_lists_them():
    for mapping in ("word_mod", "vertex", "xor", "block_mod"):
        assert AccelConfig.from_dict({"hash_engine": {"bank_mapping": mapping}}).hash_engine.bank_mapping == mapping
    with pytest.raises(ValueError, match=re.escape("valid: word_mod | vertex | xor | block_mod")):
        AccelConfig.from_dict({"hash_engine": {"bank_mapping": "skewed"}})


def test_load_config_files(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "server"\n[dram]\nbw_bytes_per_cycle = 64.0\n')
    cfg = load_config(str(path))
    assert cfg.dram.bw_bytes_per_cycle == 64.0 and cfg.mlp_engine.arrays == load_config("server").mlp_engine.arrays
    path.write_text("[cache]\nkib = 32.0\n")
    assert load_config(str(path)).cache.kib == 32.0 and load_config(str(path)).mlp_engine.rows == 32
    path.write_text('base = "laptop"\n')
    with pytest.raises(ValueError, match="base"):
        load_config(str(path))
    path.write_text("[cache\nkib = 1")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(str(path))
    with pytest.raises(ValueError, match="edge, server"):
        load_config(str(tmp_path / "missing.toml"))


def _numeric_keys():
    """(section, key) of every numeric key of the edge preset; section '' for top-level keys."""
    data = tomllib.loads(open(preset_path("edge")).read())
    keys = []
    for section, values in data.items():
        if isinstance(values, dict):
            keys += [(section, k) for k, v in values.items() if isinstance(v, (int, float, list))]
        elif isinstance(values, (int, float)):
            keys.append(("", section))
    return keys


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e308", "-1"])
def test_every_numeric_key_rejects_non_finite_and_huge_values_naming_file_and_key(tmp_path, value):
    # inf, nan and 1e308 once gave an OverflowError traceback (int(inf * 8192)) or huge arrays
    path = tmp_path / "user.toml"
    keys = _numeric_keys()
    assert len(keys) > 40
    for section, key in keys:
        default = getattr(getattr(AccelConfig(), section) if section else AccelConfig(), key)
        literal = f"[{value}, 2.0]" if isinstance(default, tuple) else value
        path.write_text(f"[{section}]\n{key} = {literal}\n" if section else f"{key} = {literal}\n")
        name = f"{section}.{key}" if section else key
        with pytest.raises(ValueError, match=rf"^accelerator config {re.escape(str(path))}: {re.escape(name)} = ") as info:
            load_config(str(path))
        assert "valid:" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("overrides, message", [
    ({"cache": {"kib": 1e6}}, "cache.kib = 1000000.0; valid: finite number in (0, 65536]"),
    ({"hash_engine": {"sram_banks": 1 << 20}}, "hash_engine.sram_banks = 1048576; valid: integer in [1, 1024]"),
    ({"hash_engine": {"batch_groups": 1 << 20}}, "hash_engine.batch_groups"),
    ({"hash_engine": {"word_bits": 1}}, "hash_engine.word_bits = 1; valid: integer in [8, 1024]"),
    ({"dram": {"queue_depth": 1 << 40}}, "dram.queue_depth"),
    ({"tile_samples": 1 << 40}, "tile_samples"),
    ({"mlp_engine": {"pmax": 64}}, "mlp_engine.pmax"),
    ({"tech": {"sram_kib": 4.0}}, "tech.sram_kib = 4.0; valid: a list of at most 64 numbers"),
])
def test_sizes_that_would_allocate_huge_arrays_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        AccelConfig.from_dict(overrides)


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "user.toml"
    path.write_text('[hash_engine]\nsram_banks = 0\n')
    with pytest.raises(ValueError, match=rf"^accelerator config {re.escape(str(path))}: hash_engine.sram_banks = 0"):
        load_config(str(path))
    path.write_text('[dramm]\nx = 1\n')
    with pytest.raises(ValueError, match=rf"^accelerator config {re.escape(str(path))}: unknown key\(s\) dramm"):
        load_config(str(path))
    path.write_bytes(b"name = '\xff'\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(str(path))
