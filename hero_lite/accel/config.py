"""Accelerator configuration: frozen dataclasses per unit, loaded from TOML presets or files.

`load_config("edge")`, `load_config("server")` or `load_config("path/to/file.toml")`. A file may
start from a preset with `base = "edge"` (or "server") and override only some keys; without
`base` the defaults are the edge preset's values (a test keeps the dataclass defaults equal to
`presets/edge.toml`). Unknown keys are rejected with the list of valid ones; zero or negative
sizes, non-finite numbers, numbers beyond a plausible range and impossible combinations raise
ValueError naming the key (and, from `load_config`, the file), e.g.
"hash_engine.sram_banks = 0; valid: integer in [1, 1024]".

Ranges: every number is finite; clock_hz in (0, 1e12]; unit, lane and per-cycle counts in
[1, 65536]; banks and cache ways in [1, 1024]; batch_groups in [1, 256]; word_bits in [8, 1024];
line_bytes in [8, 4096]; SRAM and buffer sizes in (0, 1 GiB], the cache in (0, 64 MiB];
arrays <= 1024; rows, cols <= 4096; pmax, pmin <= 32; tile_samples <= 2^20; fifo_depth <= 1024;
ray_block <= 4096; DRAM bandwidth in [0.001, 2^20] bytes per cycle, latency in [0, 2^24] cycles,
queue_depth <= 2^20; areas in [0, 1e9] um^2; energies in [0, 1e6] pJ; technology multipliers and
the tag area fraction in [0, 1000]; node_nm in [1, 1000].

Technology numbers (PE, SRAM, per-unit costs) are given at the 45 nm node of their sources
(BitFusion synthesis, CACTI via the BitFusion code, Horowitz) and scaled to the design's node by
`tech.area_scale` and `tech.energy_scale`. Every preset number carries a comment with its source.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

BASE_PRESETS = ("edge", "server")
# The hardware variants (presets/edge_*.toml) each start from a base preset and change a few keys.
PRESETS = BASE_PRESETS + tuple(sorted(
    entry.name.removesuffix(".toml") for entry in resources.files("hero_lite.accel").joinpath("presets").iterdir()
    if entry.name.endswith(".toml") and entry.name.removesuffix(".toml") not in BASE_PRESETS))
PE_MODES = ("bitfusion", "bit_serial", "fixed")
BANK_MAPPINGS = ("word_mod", "vertex", "xor", "block_mod")  # order = _kernels.MAP_* codes
AREA_MODES = ("fixed", "fit")


# Plausible ranges of the numeric keys. Every number must be finite and inside its range: the upper
# bounds keep cycle and byte counts far from int64 overflow and cap the arrays the simulator sizes
# from the config (per-bank buffers, cache tag arrays, DRAM queues) at a few hundred MiB.
MAX_CLOCK_HZ = 1e12
MAX_UNITS = 1 << 16  # units, lanes, samples per cycle
MAX_BANKS = 1 << 10  # SRAM and cache banks
MAX_BATCH_GROUPS = 1 << 8
MAX_SRAM_KIB = float(1 << 20)  # any on-chip memory: 1 GiB
MAX_CACHE_KIB = float(1 << 16)  # 64 MiB: the simulator keeps per-line LRU state
MAX_AREA_UM2 = 1e9  # 1000 mm^2
MAX_PJ = 1e6  # any energy per event
MAX_SCALE = 1e3  # technology multipliers, tag area fraction


def _fmt(x: float) -> str:
    """A bound for a message: 1048576 rather than 1.04858e+06, 1e+12 rather than 1000000000000."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e9 else f"{x:g}"


def _check(section: str, key: str, value: Any, ok: bool, valid: str) -> None:
    if not ok:
        where = f"{section}.{key}" if section else key
        raise ValueError(f"{where} = {value!r}; valid: {valid}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _ints(section: str, obj: Any, keys: tuple[str, ...], lo: int, hi: int) -> None:
    for key in keys:
        v = getattr(obj, key)
        _check(section, key, v, _is_int(v) and lo <= v <= hi, f"integer in [{lo}, {hi}]")


def _positive_ints(section: str, obj: Any, keys: tuple[str, ...], hi: int = MAX_UNITS) -> None:
    _ints(section, obj, keys, 1, hi)


def _positive_nums(section: str, obj: Any, keys: tuple[str, ...], hi: float) -> None:
    for key in keys:
        v = getattr(obj, key)
        _check(section, key, v, _is_num(v) and 0 < v <= hi, f"finite number in (0, {_fmt(hi)}]")


def _nonnegative_nums(section: str, obj: Any, keys: tuple[str, ...], hi: float) -> None:
    for key in keys:
        v = getattr(obj, key)
        _check(section, key, v, _is_num(v) and 0 <= v <= hi, f"finite number in [0, {_fmt(hi)}]")


@dataclass(frozen=True)
class SamplerConfig:
    """Ray sampler: walks each ray with the constant step, skipping empty space (occupancy bits).

    steps_per_cycle : marching positions tested per cycle (lanes; every ray costs at least one step).
    occupancy_kib : occupancy bitfield SRAM, KiB (one 32-bit read per step).
    area_um2 : logic area of one lane at 45 nm, um^2. pj_per_step : logic energy per step at 45 nm, pJ.
    """

    steps_per_cycle: int = 4
    occupancy_kib: float = 32.0
    area_um2: float = 12600.0
    pj_per_step: float = 2.7

    def validate(self) -> None:
        _positive_ints("sampler", self, ("steps_per_cycle",))
        _positive_nums("sampler", self, ("occupancy_kib",), MAX_SRAM_KIB)
        _nonnegative_nums("sampler", self, ("area_um2",), MAX_AREA_UM2)
        _nonnegative_nums("sampler", self, ("pj_per_step",), MAX_PJ)


@dataclass(frozen=True)
class HashEngineConfig:
    """Hash-encoding engine: index-generation units, banked grid SRAM, interpolation units.

    igu_units : index-generation units; each emits the 8 corner indices of one (sample, level)
        per cycle. interp_units : trilinear interpolation units, one (sample, level) per cycle.
    grid_sram_kib : on-chip grid SRAM for whole levels (coarse to fine while they fit), KiB.
    sram_banks : banks of the grid SRAM, one word per bank per cycle.
    batch_groups : (sample, level) groups the grid SRAM and the cache look up together; a batch
        takes max-bank-load cycles over its distinct words (lines).
    word_bits : SRAM word width; a word holds floor(word_bits / slot) entries (no straddling), slot =
        F * b bits, or its next power of two with the block mappings.
    bank_mapping : bank of a grid-SRAM word and of a cache line.
        'word_mod': word index mod sram_banks, line mod cache.banks (low-order interleaving).
        'vertex': vertex-interleaved (bank = corner parity (x&1 | (y&1)<<1 | (z&1)<<2) mod banks,
        chosen before hashing as in Hi-NeRF; on-chip levels conflict-free); cache as word_mod.
        'xor' and 'block_mod': entries in power-of-two slots, tables cut into aligned bank blocks
        (the word, or line, at 2 bits), one block per bank: bank = XOR of the block number's
        log2(banks)-bit fields ('xor', Rau 1991) or block number mod banks ('block_mod'), for both
        memories. Batch cycles and the frame's latency then never grow with fewer bits.
    igu_area_um2, interp_area_um2 : area of one unit at 45 nm, um^2.
    igu_pj_per_group, interp_pj_per_group : energy per (sample, level) at 45 nm, pJ.
    """

    igu_units: int = 4
    interp_units: int = 4
    grid_sram_kib: float = 32.0
    sram_banks: int = 16
    batch_groups: int = 2
    word_bits: int = 32
    bank_mapping: str = "xor"
    igu_area_um2: float = 53000.0
    interp_area_um2: float = 67700.0
    igu_pj_per_group: float = 28.6
    interp_pj_per_group: float = 37.2

    def validate(self) -> None:
        _positive_ints("hash_engine", self, ("igu_units", "interp_units"))
        _positive_ints("hash_engine", self, ("sram_banks",), MAX_BANKS)
        _positive_ints("hash_engine", self, ("batch_groups",), MAX_BATCH_GROUPS)
        _ints("hash_engine", self, ("word_bits",), 8, 1024)
        _positive_nums("hash_engine", self, ("grid_sram_kib",), MAX_SRAM_KIB)
        _nonnegative_nums("hash_engine", self, ("igu_area_um2", "interp_area_um2"), MAX_AREA_UM2)
        _nonnegative_nums("hash_engine", self, ("igu_pj_per_group", "interp_pj_per_group"), MAX_PJ)
        _check("hash_engine", "bank_mapping", self.bank_mapping, self.bank_mapping in BANK_MAPPINGS,
               " | ".join(BANK_MAPPINGS))
        bits = int(self.grid_sram_kib * 8192)
        _check("hash_engine", "grid_sram_kib", self.grid_sram_kib, bits >= self.sram_banks * self.word_bits,
               f">= one {self.word_bits}-bit word per bank ({self.sram_banks * self.word_bits / 8192:g} KiB)")


@dataclass(frozen=True)
class CacheConfig:
    """Set-associative LRU cache in front of DRAM for the levels that are not on chip.

    kib : data capacity, KiB. ways : associativity. line_bytes : line size (one DRAM request);
    a line holds floor(8 * line_bytes / slot) entries (slot: see HashEngineConfig.word_bits).
    banks : line-interleaved banks (bank = line address mod banks, or by bank block as
    hash_engine.bank_mapping says); a batch's distinct lines take max-bank-load cycles.
    tag_area_fraction : tag + state array area as a fraction of the data array.
    """

    kib: float = 16.0
    ways: int = 4
    line_bytes: int = 32
    banks: int = 16
    tag_area_fraction: float = 0.15

    @property
    def n_lines(self) -> int:
        return int(round(self.kib * 1024)) // self.line_bytes

    @property
    def n_sets(self) -> int:
        return self.n_lines // self.ways

    def validate(self) -> None:
        _positive_nums("cache", self, ("kib",), MAX_CACHE_KIB)
        _positive_ints("cache", self, ("ways", "banks"), MAX_BANKS)
        _positive_ints("cache", self, ("line_bytes",), 4096)
        _nonnegative_nums("cache", self, ("tag_area_fraction",), MAX_SCALE)
        _check("cache", "line_bytes", self.line_bytes, self.line_bytes >= 8, ">= 8 (one fp32 entry of 2 features)")
        total = self.kib * 1024
        _check("cache", "kib", self.kib, abs(total - round(total)) < 1e-9 and int(round(total)) % self.line_bytes == 0,
               f"a whole number of {self.line_bytes}-byte lines")
        _check("cache", "ways", self.ways, self.ways <= self.n_lines,
               f"<= {self.n_lines} lines of a {self.kib:g} KiB cache with {self.line_bytes}-byte lines")
        _check("cache", "ways", self.ways, self.n_lines % self.ways == 0,
               f"a divisor of the {self.n_lines} lines (whole number of sets)")


@dataclass(frozen=True)
class MLPEngineConfig:
    """MLP engine: an R x C weight-stationary systolic array of bit-flexible PEs.

    arrays : identical systolic arrays; a tile's samples are split evenly across them.
    rows, cols : R x C PEs per array (R along the input dimension K, C along the output dimension N).
    pe_mode : 'bitfusion' (perf factor floor(pmax/max(b_a,pmin)) * floor(pmax/max(b_w,pmin)) as
        R' = R * factor), 'bit_serial' (weight bits in ceil(b_w/pmin) serial steps) or 'fixed'
        (native precision pmax, no gain below).
    pmax, pmin : native (largest) and smallest operand widths, bits.
    pe_area_um2, pe_pj_per_cycle, pe_leakage_uw : one PE of the chosen mode at 45 nm.
    weight_buffer_kib, act_buffer_kib : weight buffer and (double-buffered, each half) activation buffer.
    """

    arrays: int = 1
    rows: int = 32
    cols: int = 32
    pe_mode: str = "bitfusion"
    pmax: int = 8
    pmin: int = 2
    pe_area_um2: float = 1734.6
    pe_pj_per_cycle: float = 0.459
    pe_leakage_uw: float = 59.3
    weight_buffer_kib: float = 20.0
    act_buffer_kib: float = 32.0

    def validate(self) -> None:
        _positive_ints("mlp_engine", self, ("arrays",), 1024)
        _positive_ints("mlp_engine", self, ("rows", "cols"), 4096)
        _positive_ints("mlp_engine", self, ("pmax", "pmin"), 32)
        _check("mlp_engine", "pe_mode", self.pe_mode, self.pe_mode in PE_MODES, " | ".join(PE_MODES))
        _check("mlp_engine", "pmin", self.pmin, self.pmin <= self.pmax, f"<= pmax = {self.pmax}")
        _positive_nums("mlp_engine", self, ("pe_area_um2",), MAX_AREA_UM2)
        _positive_nums("mlp_engine", self, ("weight_buffer_kib", "act_buffer_kib"), MAX_SRAM_KIB)
        _nonnegative_nums("mlp_engine", self, ("pe_pj_per_cycle", "pe_leakage_uw"), MAX_PJ)


@dataclass(frozen=True)
class VRUConfig:
    """Volume-rendering unit: alpha compositing, `samples_per_cycle` samples per cycle.

    area_um2 : unit area at 45 nm, um^2. pj_per_sample : energy per composited sample at 45 nm, pJ.
    """

    samples_per_cycle: int = 1
    area_um2: float = 67000.0
    pj_per_sample: float = 26.7

    def validate(self) -> None:
        _positive_ints("vru", self, ("samples_per_cycle",))
        _nonnegative_nums("vru", self, ("area_um2",), MAX_AREA_UM2)
        _nonnegative_nums("vru", self, ("pj_per_sample",), MAX_PJ)


@dataclass(frozen=True)
class DRAMConfig:
    """DRAM channel: one line per line_bytes / bw cycles in FIFO order, data back `latency_cycles` later.

    bw_bytes_per_cycle : sustained bandwidth, bytes per accelerator cycle (resolution 0.001).
    latency_cycles : from the end of a line's transfer to its data at the cache.
    queue_depth : outstanding line requests at most (issued, not yet returned).
    pj_per_bit : access energy per bit transferred.
    """

    bw_bytes_per_cycle: float = 32.0
    latency_cycles: int = 50
    queue_depth: int = 64
    pj_per_bit: float = 15.0

    @property
    def bw_milli_bytes_per_cycle(self) -> int:
        """Bandwidth in 1/1000 bytes per cycle, the integer unit of the channel model."""
        return int(round(self.bw_bytes_per_cycle * 1000))

    def validate(self) -> None:
        _positive_nums("dram", self, ("bw_bytes_per_cycle",), float(1 << 20))
        _check("dram", "bw_bytes_per_cycle", self.bw_bytes_per_cycle, self.bw_milli_bytes_per_cycle >= 1, ">= 0.001")
        _ints("dram", self, ("latency_cycles",), 0, 1 << 24)
        _positive_ints("dram", self, ("queue_depth",), 1 << 20)
        _nonnegative_nums("dram", self, ("pj_per_bit",), MAX_PJ)


@dataclass(frozen=True)
class TechConfig:
    """Technology constants: node scaling from 45 nm and the CACTI SRAM table (45 nm, one bank).

    node_nm : the design's node (informational). area_scale, energy_scale : multipliers from 45 nm
    to the node. sram_kib, sram_area_mm2, sram_read_pj, sram_write_pj, sram_leakage_mw : CACTI
    table rows (size per bank, area, energy per 32-bit access, leakage), interpolated log-log and
    extrapolated beyond the largest row (area linear in size, energy with the last segment's slope).
    leakage_scale : multiplier on leakage power after node scaling.
    """

    node_nm: int = 28
    area_scale: float = 0.377
    energy_scale: float = 0.51
    leakage_scale: float = 0.1
    sram_kib: tuple[float, ...] = (0.125, 1.0, 2.0, 4.0, 8.0, 16.0)
    sram_area_mm2: tuple[float, ...] = (0.0015, 0.0088, 0.0151, 0.0301, 0.0575, 0.1086)
    sram_read_pj: tuple[float, ...] = (0.68, 1.13, 1.90, 3.43, 6.39, 9.98)
    sram_write_pj: tuple[float, ...] = (0.93, 3.30, 3.64, 4.31, 5.56, 8.42)
    sram_leakage_mw: tuple[float, ...] = (0.25, 1.79, 3.23, 7.30, 13.69, 27.13)

    def validate(self) -> None:
        _positive_ints("tech", self, ("node_nm",), 1000)
        _positive_nums("tech", self, ("area_scale", "energy_scale"), MAX_SCALE)
        _nonnegative_nums("tech", self, ("leakage_scale",), MAX_SCALE)
        for key in ("sram_kib", "sram_area_mm2", "sram_read_pj", "sram_write_pj", "sram_leakage_mw"):
            v = getattr(self, key)
            _check("tech", key, v, isinstance(v, (tuple, list)) and len(v) <= 64, "a list of at most 64 numbers")
        n = len(self.sram_kib)
        _check("tech", "sram_kib", list(self.sram_kib), n >= 2 and all(_is_num(v) and 0 < v <= MAX_SRAM_KIB
                                                                      for v in self.sram_kib)
               and all(a < b for a, b in zip(self.sram_kib, self.sram_kib[1:])),
               f">= 2 increasing finite sizes in (0, {_fmt(MAX_SRAM_KIB)}]")
        for key in ("sram_area_mm2", "sram_read_pj", "sram_write_pj", "sram_leakage_mw"):
            v = getattr(self, key)
            _check("tech", key, list(v), len(v) == n and all(_is_num(x) and 0 < x <= MAX_PJ for x in v),
                   f"{n} finite numbers in (0, {_fmt(MAX_PJ)}] (one per tech.sram_kib row)")


SECTIONS = {
    "sampler": SamplerConfig,
    "hash_engine": HashEngineConfig,
    "cache": CacheConfig,
    "mlp_engine": MLPEngineConfig,
    "vru": VRUConfig,
    "dram": DRAMConfig,
    "tech": TechConfig,
}


@dataclass(frozen=True)
class AccelConfig:
    """A NeuRex-like NeRF accelerator (defaults: the `edge` preset).

    Top-level keys: name; clock_hz; area_mode ('fixed': SRAM sizes of the config, or 'fit': grid
    SRAM sized to hold every level of the policy); tile_samples (samples per pipeline tile);
    fifo_depth (tiles each inter-unit FIFO holds); ray_block (the sampler issues rays in
    ray_block x ray_block pixel blocks, blocks in raster order). One table per unit.
    """

    name: str = "edge"
    clock_hz: float = 5.0e8
    area_mode: str = "fixed"
    tile_samples: int = 512
    fifo_depth: int = 2
    ray_block: int = 8
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    hash_engine: HashEngineConfig = field(default_factory=HashEngineConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    mlp_engine: MLPEngineConfig = field(default_factory=MLPEngineConfig)
    vru: VRUConfig = field(default_factory=VRUConfig)
    dram: DRAMConfig = field(default_factory=DRAMConfig)
    tech: TechConfig = field(default_factory=TechConfig)

    def __post_init__(self) -> None:
        _check("", "name", self.name, isinstance(self.name, str) and bool(self.name), "a non-empty string")
        _positive_nums("", self, ("clock_hz",), MAX_CLOCK_HZ)
        _check("", "area_mode", self.area_mode, self.area_mode in AREA_MODES, " | ".join(AREA_MODES))
        _positive_ints("", self, ("tile_samples",), 1 << 20)
        _positive_ints("", self, ("fifo_depth",), 1024)
        _positive_ints("", self, ("ray_block",), 4096)
        for section in SECTIONS:
            getattr(self, section).validate()

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (TOML/JSON-able); `from_dict(to_dict())` gives an equal config."""
        out = dataclasses.asdict(self)
        for key, value in out["tech"].items():
            if isinstance(value, tuple):
                out["tech"][key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: "AccelConfig | None" = None) -> "AccelConfig":
        """Build a config from a nested dict, over `base` (default: the dataclass defaults).

        Raises ValueError for unknown keys (listing the valid ones) and invalid values (naming the key).
        """
        if not isinstance(data, dict):
            raise TypeError(f"accelerator config: expected a table/dict, got {type(data).__name__}")
        base = cls() if base is None else base
        top = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(top))
        if unknown:
            raise ValueError(f"accelerator config: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(top)}")
        kwargs: dict[str, Any] = {}
        for key in top:
            if key not in SECTIONS:
                kwargs[key] = data.get(key, getattr(base, key))
                continue
            section_cls = SECTIONS[key]
            sub = data.get(key, {})
            if not isinstance(sub, dict):
                raise ValueError(f"{key}: expected a table, got {type(sub).__name__}")
            valid = [f.name for f in dataclasses.fields(section_cls)]
            unknown = sorted(set(sub) - set(valid))
            if unknown:
                raise ValueError(f"{key}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
            values = {f: sub.get(f, getattr(getattr(base, key), f)) for f in valid}
            for f, v in values.items():
                if isinstance(v, list):
                    values[f] = tuple(v)
            kwargs[key] = section_cls(**values)
        return cls(**kwargs)

    def with_overrides(self, overrides: dict[str, Any]) -> "AccelConfig":
        """A copy with some keys replaced, e.g. `{"dram": {"bw_bytes_per_cycle": 64.0}}`."""
        return AccelConfig.from_dict(overrides, base=self)


def preset_path(name: str) -> str:
    """File path of a bundled preset (a name in `PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"accelerator preset {name!r}; valid: {', '.join(PRESETS)} or a path to a .toml file")
    return str(resources.files("hero_lite.accel").joinpath("presets", f"{name}.toml"))


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"accelerator config {path}: not valid TOML ({err})") from None


def load_config(name_or_path: str) -> AccelConfig:
    """Load a preset (a name in `PRESETS`: 'edge', 'server' and their variants) or a TOML file.

    A file may name a base preset to start from with a top-level `base = "edge"` (or "server"); its
    other keys override the preset's. Without `base`, missing keys take the edge defaults.
    Errors are ValueErrors naming the file and the key, e.g.
    "accelerator config mine.toml: dram.bw_bytes_per_cycle = inf; valid: finite number in (0, 1048576]".
    """
    if name_or_path in PRESETS:
        name_or_path = preset_path(name_or_path)
    elif not os.path.isfile(name_or_path):
        raise ValueError(f"accelerator config {name_or_path!r}: not a preset ({', '.join(PRESETS)}) and no such file")
    data = _read_toml(name_or_path)
    base_name = data.pop("base", None)
    base = None
    if base_name is not None:
        if not isinstance(base_name, str) or base_name not in BASE_PRESETS:
            raise ValueError(f"accelerator config {name_or_path}: base = {base_name!r}; valid: {', '.join(BASE_PRESETS)}")
        base = load_config(base_name)
    return _from_file(name_or_path, data, base)


def _from_file(path: str, data: dict[str, Any], base: AccelConfig | None) -> AccelConfig:
    """`AccelConfig.from_dict` with the file's name in front of any error."""
    try:
        return AccelConfig.from_dict(data, base=base)
    except (ValueError, TypeError) as exc:
        message = str(exc).removeprefix("accelerator config: ")
        raise ValueError(f"accelerator config {path}: {message}") from None
