"""Sweep specs: the scenes, seeds, methods and budgets of a sweep, read from TOML and validated.

A spec (the shipped `headline.toml` is the headline protocol, `variants.toml` the same against the
hardware-aware baselines on five accelerators, `tiny.toml` a quick check)::

    scenes = ["primitives", "lattice"]   # names of folders under --scenes-root, or scene folders
    accels = ["edge", "server"]          # accelerator presets or TOML files [edge]
    seeds = [0, 1, 2]                    # seeds of CAQ-like and of HERO's searches
    methods = ["caq", "hero"]            # caq (always: the match's anchor), hero, hero_hash8,
                                         # caq_snapped, heuristic, uniformK (K = 2..8)
    fractions = [0.9, 0.85, 0.76]        # the searches' latency budgets, as fractions of the anchor's latency
    size_fraction = 1.0                  # the searches' size budget, as a fraction of the anchor's model size
    anchor = "caq"                       # whose cost the budgets are fractions of: caq (CAQ-like, the
                                         # paper's protocol) or heuristic (a fixed policy, needs it in methods)
    [train]                              # one fp32 checkpoint per scene
    steps = 1200
    seed = 0
    [caq]                                # BitLearningConfig fields (CAQ-like's bit learning)
    [search]                             # SearchConfig fields; the sweep sets seed and budgets

Every error is one line naming the key and its valid values.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hero_lite.accel.config import load_config
from hero_lite.nerf.config import strict_from_dict
from hero_lite.quant.learned import BitLearningConfig
from hero_lite.search.compare import DEFAULT_FRACTIONS, FIXED_BASELINES, MATCHED_VALID, SEARCHED, is_matched_method
from hero_lite.search.hero import SearchConfig

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"
SPEC_KEYS = ("scenes", "seeds", "methods", "fractions", "size_fraction", "anchor", "accels", "train", "caq", "search")
# the rows whose cost on the search frame the budgets may be taken from -> their name in prose
ANCHORS = {"caq": "CAQ-like", "heuristic": "the heuristic"}
TRAIN_KEYS = ("steps", "seed")
# set per job by the sweep, so a spec may not set them
SWEEP_SET = {"seed": "the sweep's seeds list",
             "budgets": "fractions x the anchor's latency and size_fraction x the anchor's size"}
_UNIFORM = re.compile(r"^uniform([2-8])$")


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep.

    name : the spec's file name without .toml; scenes : (label, folder) pairs, labels distinct;
    accels : (label, accelerator) pairs: a preset name (its own label) or a TOML file's absolute path
    (labelled by its file name without .toml), labels distinct; seeds : search seeds; methods :
    'caq' and any of hero, hero_hash8, caq_snapped, heuristic, uniformK; fractions : the searches'
    latency fractions in (0, 1] (empty without a searched method) of the anchor's latency on the
    search frame; size_fraction : the searches' size budget as a fraction in (0, 1] of the anchor's
    model size on the search frame (1: the anchor's size); anchor : 'caq' (CAQ-like's cost,
    the paper's protocol) or 'heuristic' (the fixed hand policy's, the same for every seed);
    train_steps, train_seed : the fp32 training of each scene; caq : CAQ-like's bit learning; search : every search setting (seed
    0, no budgets, accel the first of accels: the sweep sets all three per job).
    """

    name: str
    scenes: tuple[tuple[str, str], ...]
    accels: tuple[tuple[str, str], ...]
    seeds: tuple[int, ...]
    methods: tuple[str, ...]
    fractions: tuple[float, ...]
    train_steps: int
    train_seed: int
    caq: BitLearningConfig
    search: SearchConfig
    anchor: str = "caq"
    size_fraction: float = 1.0

    def to_dict(self) -> dict:
        return {"name": self.name, "scenes": {label: os.path.abspath(path) for label, path in self.scenes},
                "accels": dict(self.accels), "seeds": list(self.seeds), "methods": list(self.methods), "fractions": list(self.fractions),
                "size_fraction": self.size_fraction, "anchor": self.anchor,
                "train": {"steps": self.train_steps, "seed": self.train_seed},
                "caq": dataclasses.asdict(self.caq), "search": self.search.to_dict()}

    @property
    def job_count(self) -> int:
        """Jobs of the sweep: per scene one training; per scene, accelerator and seed CAQ-like, the
        baselines, the searches (searched methods x fractions) and the report."""
        per_seed = 2 + len(self.baselines) + len(self.searched) * len(self.fractions)
        return len(self.scenes) * (1 + len(self.accels) * len(self.seeds) * per_seed)

    @property
    def baselines(self) -> tuple[str, ...]:
        """The fixed-policy methods (caq_snapped, heuristic, uniformK) of the spec."""
        return tuple(m for m in self.methods if m in FIXED_BASELINES or _UNIFORM.match(m))

    @property
    def searched(self) -> tuple[str, ...]:
        """The searched methods (hero, hero_hash8) of the spec."""
        return tuple(m for m in self.methods if m in SEARCHED)


def shipped_specs() -> dict[str, Path]:
    """Name -> path of the specs shipped with hero-lite (hero_lite/search/specs/*.toml)."""
    return {p.stem: p for p in sorted(SPECS_DIR.glob("*.toml"))}


def resolve_spec_path(text: str) -> Path:
    """The spec file `text` names: a TOML file, or the name of a shipped spec ('headline', 'tiny').

    Raises FileNotFoundError naming the shipped specs.
    """
    if os.path.isfile(text):
        return Path(text)
    shipped = shipped_specs()
    name = text.removesuffix(".toml")
    if os.sep not in text and name in shipped:
        return shipped[name]
    raise FileNotFoundError(f"spec {text}: no such file, nor a shipped spec (shipped: {', '.join(shipped)})")


def load_spec(text: str, scenes_root: str = "scenes") -> SweepSpec:
    """Read and validate a spec file (or a shipped spec's name, see `resolve_spec_path`)."""
    path = resolve_spec_path(text)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"spec {text}: not valid TOML ({exc})") from None
    return parse_spec(data, path.stem, scenes_root, where=f"spec {text}")


def parse_spec(data: dict, name: str, scenes_root: str = "scenes", where: str = "spec") -> SweepSpec:
    """Validate the tables of a spec (see the module docstring); raises ValueError naming the key."""
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(SPEC_KEYS)}")
    for key in ("scenes", "seeds"):
        if key not in data:
            raise ValueError(f"{where}: {key} is missing; give a list, e.g. "
                             + ('scenes = ["primitives"]' if key == "scenes" else "seeds = [0, 1, 2]"))
    scenes = _scenes(data["scenes"], scenes_root, where)
    seeds = _distinct(data["seeds"], "seeds", where,
                      lambda s: isinstance(s, int) and not isinstance(s, bool) and s >= 0, "integers >= 0")
    methods = _distinct(data.get("methods", ["caq", "hero"]), "methods", where, is_matched_method,
                        MATCHED_VALID.replace("caq (required)", "caq"))
    if "caq" not in methods:
        raise ValueError(f"{where}: methods = {methods!r}; valid: a list holding 'caq' (HERO's budgets and the "
                         "match are relative to CAQ-like)")
    if any(m in SEARCHED for m in methods):
        fractions = _distinct(data.get("fractions", list(DEFAULT_FRACTIONS)), "fractions", where,
                              lambda f: isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1,
                              "numbers in (0, 1]")
    elif "fractions" in data:
        raise ValueError(f"{where}: fractions are the searches' budgets; add 'hero' (or 'hero_hash8') to methods or "
                         "leave fractions out")
    else:
        fractions = []
    size_fraction = data.get("size_fraction", 1.0)
    if not isinstance(size_fraction, (int, float)) or isinstance(size_fraction, bool) or not 0 < size_fraction <= 1:
        raise ValueError(f"{where}: size_fraction = {size_fraction!r}; valid: a number in (0, 1]")
    if "size_fraction" in data and not any(m in SEARCHED for m in methods):
        raise ValueError(f"{where}: size_fraction is the searches' size budget; add 'hero' (or 'hero_hash8') to "
                         "methods or leave it out")
    anchor = data.get("anchor", "caq")
    if not isinstance(anchor, str) or anchor not in ANCHORS:
        raise ValueError(f"{where}: anchor = {anchor!r}; valid: {', '.join(ANCHORS)}")
    if anchor not in methods:
        raise ValueError(f"{where}: anchor = {anchor!r} is not in methods; add it (the budgets are taken from its cost)")
    train = _table(data.get("train"), "train", where)
    if set(train) - set(TRAIN_KEYS):
        raise ValueError(f"{where}: unknown key train.{min(set(train) - set(TRAIN_KEYS))}; valid keys: "
                         f"{', '.join('train.' + k for k in TRAIN_KEYS)}")
    if "steps" not in train:
        raise ValueError(f"{where}: train.steps is missing; give the fp32 training steps per scene, e.g. 1200")
    for key, low in (("steps", 1), ("seed", 0)):
        value = train.get(key, 0 if key == "seed" else None)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{where}: train.{key} = {value!r}; valid: an integer >= {low}")
    caq = _config(BitLearningConfig, _table(data.get("caq"), "caq", where), "caq", where)
    search = _table(data.get("search"), "search", where)
    for key, reason in SWEEP_SET.items():
        if key in search:
            raise ValueError(f"{where}: search.{key} is set by the sweep ({reason}); leave it out")
    search = _config(SearchConfig, {**search, "budgets": {}}, "search", where)
    if search.point_set != "hero":
        raise ValueError(f"{where}: search.point_set = {search.point_set!r}; valid: 'hero' (CAQ-like uses its own set)")
    if "accels" in data and "accel" in _table(data.get("search"), "search", where):
        raise ValueError(f"{where}: search.accel and accels are both set; give the accelerators in accels only")
    if "accels" in data:
        accels = _accels(data["accels"], where)
    else:  # a spec without accels: the search's accelerator (edge by default)
        accels = _accels([search.accel], where, key="search.accel")
    search = dataclasses.replace(search, accel=accels[0][1])
    return SweepSpec(name, scenes, accels, tuple(seeds), tuple(methods), tuple(float(f) for f in fractions),
                     train["steps"], train.get("seed", 0), caq, search, anchor, float(size_fraction))


def _accels(value, where: str, key: str = "accels") -> tuple[tuple[str, str], ...]:
    """(label, accelerator) per entry: a preset name labelled by itself, or a TOML file (read now,
    named by its absolute path for every worker) labelled by its file name without .toml."""
    names = _distinct(value, key, where, lambda a: isinstance(a, str) and a.strip() != "",
                      "accelerator preset names or TOML files")
    accels = []
    for entry in names:
        try:
            load_config(entry)
        except ValueError as exc:
            raise ValueError(f"{where}: {key}: {exc}") from None
        if entry.endswith(".toml") or os.sep in entry:
            accels.append((Path(entry).stem, os.path.abspath(entry)))
        else:
            accels.append((entry, entry))
    labels = [label for label, _ in accels]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{where}: {key} = {names!r}; valid: accelerators with distinct names (they name the results)")
    return tuple(accels)


def _scenes(value, scenes_root: str, where: str) -> tuple[tuple[str, str], ...]:
    """(label, folder) per entry: a plain name is the folder NAME under `scenes_root`, anything with a
    path separator a scene folder itself; the label is the folder's name."""
    names = _distinct(value, "scenes", where, lambda s: isinstance(s, str) and s.strip() != "",
                      "scene names under --scenes-root or scene folders")
    scenes = []
    for entry in names:
        path = os.path.join(scenes_root, entry) if os.sep not in entry else entry
        if not os.path.isdir(path):
            where_to = f"a folder under --scenes-root {scenes_root}" if os.sep not in entry else "a scene folder"
            raise ValueError(f"{where}: scenes entry {entry!r} is not {where_to} ({path} not found)")
        scenes.append((os.path.basename(os.path.normpath(path)), path))
    labels = [label for label, _ in scenes]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{where}: scenes = {names!r}; valid: folders with distinct names (they name the results)")
    return tuple(scenes)


def _distinct(value, key: str, where: str, ok, valid: str) -> list:
    if not isinstance(value, list) or not value or not all(ok(v) for v in value) or len(set(value)) != len(value):
        raise ValueError(f"{where}: {key} = {value!r}; valid: a non-empty list of distinct {valid}")
    return value


def _table(value, key: str, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{where}: {key} = {value!r}; valid: a table [{key}] of settings")
    return value


def _config(cls, data: dict, key: str, where: str):
    """`cls` from the table [`key`], its errors prefixed with the spec and the table."""
    try:
        return strict_from_dict(cls, data, f"[{key}]")
    except (TypeError, ValueError) as exc:
        text = str(exc)
        raise ValueError(f"{where}: {text if text.startswith('[') else f'[{key}] {text}'}") from None
