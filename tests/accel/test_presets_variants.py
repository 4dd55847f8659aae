"""The pre-registered hardware variants (hero_lite/accel/presets/edge_*.toml): each differs from the
edge preset in exactly the keys registered here and listed in the "Variants" table of
docs/accelerator.md, and each does what its header says it does, on a small synthetic frame."""

import math
import os
import re
from pathlib import Path

import pytest

from hero_lite.accel import load_config, simulate, synthetic_workload, uniform_bits
from hero_lite.accel.config import preset_path
from hero_lite.accel.units import mlp_layer_cycles
from hero_lite.accel.workload import default_geometry

SOURCE = Path(os.environ.get("HERO_LITE_SOURCE", Path(__file__).resolve().parents[2]))
DOC = SOURCE / "docs" / "accelerator.md"
PRESET_DIR = Path(preset_path("edge")).parent

# What each variant changes from edge (besides its name). Registered before any method comparison
# on them: a change here or in a variant file changes a pre-registered design.
VARIANTS = {
    "edge_2arrays": {"mlp_engine.arrays"},
    "edge_bitserial": {"mlp_engine.arrays", "mlp_engine.pe_mode", "mlp_engine.pmax", "mlp_engine.pmin",
                       "mlp_engine.pe_area_um2", "mlp_engine.pe_pj_per_cycle", "mlp_engine.pe_leakage_uw"},
    "edge_1group": {"hash_engine.igu_units", "hash_engine.interp_units", "hash_engine.batch_groups",
                    "hash_engine.sram_banks", "cache.banks"},
    "edge_fulltables": {"hash_engine.grid_sram_kib", "cache.kib"},
    "edge_widedram": {"dram.bw_bytes_per_cycle", "dram.queue_depth"},
}


def variant(name):
    return load_config(str(PRESET_DIR / f"{name}.toml"))


def flat(config) -> dict:
    """Dotted key -> value of a resolved config."""
    out = {}
    for key, value in config.to_dict().items():
        if isinstance(value, dict):
            out.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            out[key] = value
    return out


def differing_keys(config) -> set[str]:
    edge, mine = flat(load_config("edge")), flat(config)
    return {key for key in edge if edge[key] != mine[key]} - {"name"}


def docs_variant_rows() -> dict[str, set[str]]:
    """Variant name -> the dotted keys its row of the "Variants" table in docs/accelerator.md names."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n### Variants\n", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        row = re.match(r"\|\s*`(edge_\w+)`\s*\|([^|]*)\|", line)
        if row:
            rows[row.group(1)] = set(re.findall(r"`([a-z_]+\.[a-z_0-9]+)`", row.group(2)))
    return rows


def test_every_variant_file_is_registered():
    shipped = {path.stem for path in PRESET_DIR.glob("*.toml")} - {"edge", "server"}
    assert shipped == set(VARIANTS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_variant_differs_from_edge_in_its_registered_keys_only(name):
    config = variant(name)
    assert config.name == name
    assert differing_keys(config) == VARIANTS[name]
    assert f'"{name}"' in (PRESET_DIR / f"{name}.toml").read_text().splitlines()[0], "header names the preset"


def test_the_docs_variants_table_lists_each_variants_keys():
    rows = docs_variant_rows()
    assert set(rows) == set(VARIANTS), "docs/accelerator.md: one row per variant in the Variants table"
    for name, keys in VARIANTS.items():
        assert rows[name] == keys, f"docs/accelerator.md Variants: {name} lists {sorted(rows[name])}, file: {sorted(keys)}"


@pytest.fixture(scope="module")
def frame():
    return synthetic_workload(24, 24, seed=3)


def busy(report, unit):
    return report.units[unit]["busy_cycles"]


def test_edge_2arrays_splits_the_mlp_work(frame):
    bits = uniform_bits(frame, 8)
    edge, two = simulate(frame, bits, load_config("edge")), simulate(frame, bits, variant("edge_2arrays"))
    # half the samples per array, the same fill and drain per fold: between 1x and 2x faster
    assert 1.2 < busy(edge, "mlp") / busy(two, "mlp") < 2.0
    pe = load_config("edge").mlp_engine
    assert two.area_mm2 - edge.area_mm2 == pytest.approx(pe.rows * pe.cols * pe.pe_area_um2 * 1e-6 * 0.377, rel=1e-3)


def test_edge_bitserial_is_linear_in_weight_bits_and_flat_in_activation_bits():
    mlp = variant("edge_bitserial").mlp_engine
    cycles = {(b_a, b_w): mlp_layer_cycles(512, 64, 64, b_a, b_w, mlp) for b_a in (2, 8, 9, 16) for b_w in range(2, 17)}
    for b_w in range(2, 17):
        assert cycles[(8, b_w)] * 8 == cycles[(8, 8)] * b_w  # every weight bit is one pass: no step at 5-8 or 9
        assert cycles[(2, b_w)] == cycles[(9, b_w)] == cycles[(16, b_w)]  # activations up to 16 bits: one pass
    # the PE area stays within the edge preset's (90-100%)
    edge = load_config("edge").mlp_engine
    ratio = (mlp.arrays * mlp.rows * mlp.cols * mlp.pe_area_um2) / (edge.arrays * edge.rows * edge.cols * edge.pe_area_um2)
    assert 0.9 < ratio <= 1.0


def test_edge_1group_generates_one_group_per_cycle(frame):
    bits = uniform_bits(frame, 8)
    edge, one = simulate(frame, bits, load_config("edge")), simulate(frame, bits, variant("edge_1group"))
    groups = frame.n_samples * frame.grid.n_levels
    assert busy(one, "index_gen") == groups  # one (sample, level) group per cycle
    assert busy(one, "interp") == groups
    assert groups / 4 <= busy(edge, "index_gen") < groups / 4 + 4 * math.ceil(frame.n_samples / 512)
    config = variant("edge_1group").hash_engine
    assert config.sram_banks * config.batch_groups == 8  # the 8 corners of one group, one per bank


def test_edge_fulltables_holds_levels_0_to_3_of_the_full_tables_at_8_bits():
    full = default_geometry(log2_table_size=19, max_res=2048)  # the Instant-NGP NeRF tables
    assert int(full.sizes.sum()) == 6_098_120
    level_kib = full.sizes * full.n_feat / 1024  # 8 bits: one byte per feature
    grid_kib = variant("edge_fulltables").hash_engine.grid_sram_kib
    assert level_kib[:4].sum() <= grid_kib < level_kib[:5].sum()
    # its grid memory is NeuRex's share of the 8-bit tables, 2.7%
    total = grid_kib + variant("edge_fulltables").cache.kib
    assert 0.026 < total / level_kib.sum() < 0.028


def test_edge_fulltables_keeps_more_of_a_full_size_frame_on_chip():
    frame = synthetic_workload(16, 16, seed=3, grid=default_geometry(log2_table_size=19, max_res=2048))
    bits = uniform_bits(frame, 8)
    edge, full = simulate(frame, bits, load_config("edge")), simulate(frame, bits, variant("edge_fulltables"))
    assert full.onchip_hit_rate > edge.onchip_hit_rate
    # fewer table lines from DRAM (the larger preload of the on-chip levels aside)
    assert full.dram_bytes_by_kind["hash_lines"] < edge.dram_bytes_by_kind["hash_lines"]


def test_edge_widedram_keeps_its_bandwidth_delay_product_in_flight():
    for config in (load_config("edge"), variant("edge_widedram")):
        dram = config.dram
        in_flight_bytes = dram.queue_depth * config.cache.line_bytes
        assert in_flight_bytes >= dram.bw_bytes_per_cycle * dram.latency_cycles, config.name
    assert variant("edge_widedram").dram.bw_bytes_per_cycle * 5.0e8 == pytest.approx(51.2e9)
