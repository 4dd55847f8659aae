"""Fake quantization of a trained model: hooks, STE through the model, PTQ/QAT quality on tiny,
packed export and reload, and the quantize / eval / points commands."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hero_lite.cli import cli
from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.evaluate import evaluate
from hero_lite.nerf.hooks import ACTIVATION_POINTS
from hero_lite.nerf.sh import sh_encode
from hero_lite.quant.calibrate import calibrate_activations
from hero_lite.quant.export import load_quantized, save_quantized
from hero_lite.quant.fakequant import FakeQuantHooks
from hero_lite.quant.policy import QuantPolicy, model_signature, uniform_policy
from hero_lite.quant.run import quantize_model


@pytest.fixture(scope="module")
def fp32(tiny_checkpoint, tiny_scenes):
    model, _ = load_checkpoint(tiny_checkpoint)
    return model, evaluate(model, tiny_scenes[2], with_ssim=False).psnr


def _batch(model, scene, seed=0):
    from hero_lite.nerf.train import sample_ray_batch

    n, h, w = scene.images.shape[:3]
    pixels = scene.images.reshape(n * h * w, 4)
    return sample_ray_batch(model, scene, pixels, 512, np.random.default_rng(seed), 1 << 16)


def test_calibration_ranges(fp32, tiny_scenes):
    model, _ = fp32
    minmax = calibrate_activations(model, tiny_scenes[0], np.random.default_rng(0), "minmax", n_batches=2)
    pct = calibrate_activations(model, tiny_scenes[0], np.random.default_rng(0), "percentile", n_batches=2, percentile=99.0)
    assert set(minmax) == set(ACTIVATION_POINTS)
    for name in ACTIVATION_POINTS:
        lo, hi = minmax[name]
        plo, phi = pct[name]
        assert lo <= plo <= phi <= hi  # percentiles lie inside the min/max range
    assert minmax["act.density_hidden"][0] >= 0.0  # a ReLU output


def test_ste_gradient_equals_fp32_gradient_at_the_quantized_point(fp32, tiny_scenes):
    # Quantized tables and weights with unclipped ranges: the STE passes the gradient straight
    # through, so the hooked gradients equal the fp32 gradients of a model whose tensors *are*
    # the fake-quantized values.
    model = fp32[0].copy()
    batch = _batch(model, tiny_scenes[0])
    sh = sh_encode(batch.directions)
    bits = {name: 32 for name in uniform_policy(model.config, 8, 8).bits}
    bits.update({name: 4 for name in bits if name.startswith("hash")})
    bits.update({"w.density0": 3, "w.color1": 5})
    policy = QuantPolicy("hero", bits, model_signature(model.config))
    hooks = FakeQuantHooks(model, policy, {})
    twin = model.copy()
    twin.params["hash_table"][:] = hooks.table(model.params["hash_table"])
    twin.params["density_w0"][:] = hooks.weight("w.density0", model.params["density_w0"])
    twin.params["color_w1"][:] = hooks.weight("w.color1", model.params["color_w1"])
    assert not np.array_equal(twin.params["hash_table"], model.params["hash_table"])
    grads = []
    for m, h in ((model, hooks), (twin, None)):
        fwd = m.forward(batch.positions, sh, batch.ray_ids, h)
        g = {"hash_table": np.zeros_like(m.params["hash_table"])}
        rng = np.random.default_rng(5)
        m.backward(fwd, rng.normal(size=fwd.sigmas.shape).astype(np.float32),
                   rng.normal(size=fwd.rgbs.shape).astype(np.float32), g, h)
        grads.append(g)
    for name in grads[0]:
        np.testing.assert_allclose(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-7 * np.abs(grads[1][name]).max())


def test_clipping_range_stops_the_gradient(fp32, tiny_scenes):
    # An activation range that excludes every value zeroes the gradient of everything before it.
    model = fp32[0].copy()
    batch = _batch(model, tiny_scenes[0])
    ranges = calibrate_activations(model, tiny_scenes[0], np.random.default_rng(0), n_batches=1)
    ranges["act.encoding"] = (0.0, 1e-12)  # an asymmetric range always holds 0; features are ~1e-2
    hooks = FakeQuantHooks(model, uniform_policy(model.config, 32, 8), ranges)
    fwd = model.forward(batch.positions, sh_encode(batch.directions), batch.ray_ids, hooks)
    lo, hi = hooks.act_params["act.encoding"].range()
    assert not np.any((fwd.features >= lo) & (fwd.features <= hi))  # precondition: nothing inside
    g = {"hash_table": np.zeros_like(model.params["hash_table"])}
    model.backward(fwd, np.ones_like(fwd.sigmas), np.ones_like(fwd.rgbs), g, hooks)
    assert not np.any(g["hash_table"])  # the clipped STE blocked everything upstream
    assert np.any(g["density_w0"]) and np.any(g["color_w1"])  # layers after the point still learn


def test_ptq_8bit_within_0p3_db(fp32, tiny_scenes):
    base, fp32_psnr = fp32
    model = base.copy()
    hooks = quantize_model(model, uniform_policy(model.config, 8, 8), tiny_scenes[0], np.random.default_rng(0))
    psnr = evaluate(model, tiny_scenes[2], hooks=hooks, with_ssim=False).psnr
    assert psnr >= fp32_psnr - 0.3, (psnr, fp32_psnr)


@pytest.mark.slow
def test_qat_recovers_half_of_3bit_hash_loss(fp32, tiny_scenes):
    base, fp32_psnr = fp32
    policy = uniform_policy(base.config, 3, 8)
    ptq_model = base.copy()
    ptq_hooks = quantize_model(ptq_model, policy, tiny_scenes[0], np.random.default_rng(0))
    ptq = evaluate(ptq_model, tiny_scenes[2], hooks=ptq_hooks, with_ssim=False).psnr
    qat_model = base.copy()
    qat_hooks = quantize_model(qat_model, policy, tiny_scenes[0], np.random.default_rng(0), qat_steps=150)
    qat = evaluate(qat_model, tiny_scenes[2], hooks=qat_hooks, with_ssim=False).psnr
    loss = fp32_psnr - ptq
    assert loss > 0.5, "3-bit hash PTQ should lose quality on tiny"
    assert qat >= ptq + 0.5 * loss, (fp32_psnr, ptq, qat)


def test_export_reload_is_exact(fp32, tiny_scenes, tmp_path):
    base, _ = fp32
    model = base.copy()
    policy = uniform_policy(model.config, 5, 6)
    hooks = quantize_model(model, policy, tiny_scenes[0], np.random.default_rng(1))
    psnr = evaluate(model, tiny_scenes[2], hooks=hooks, with_ssim=False).psnr
    path = tmp_path / "q.h5"
    nbytes = save_quantized(str(path), model, hooks)
    assert nbytes == policy.model_bytes(model.config)  # one definition of model bytes
    loaded, loaded_hooks, meta = load_quantized(str(path))
    assert meta["model_bytes"] == nbytes
    # the loaded tensors are exactly the dequantized values the hooks used
    np.testing.assert_array_equal(loaded.params["hash_table"], hooks.table(model.params["hash_table"]))
    for name, param in (("w.color1", "color_w1"), ("w.density0", "density_w0")):
        np.testing.assert_array_equal(loaded.params[param], hooks.weight(name, model.params[param]))
    again = evaluate(loaded, tiny_scenes[2], hooks=loaded_hooks, with_ssim=False).psnr
    assert again == psnr


def test_quantize_and_eval_commands(tiny_checkpoint, tiny_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "q.h5"
    result = runner.invoke(cli, ["quantize", str(tiny_checkpoint), str(tiny_dir), "--hash-bits", "6", "--mlp-bits", "8",
                                 "--out", str(out), "--json", str(tmp_path / "q.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "q.json").read_text())
    assert {"psnr", "model_bytes", "fp32_bytes", "policy"} <= set(report)
    assert report["policy"]["points"]["hash.l04"] == 6 and report["policy"]["points"]["w.color1"] == 8
    assert report["model_bytes"] < report["fp32_bytes"] / 4
    result = runner.invoke(cli, ["eval", str(out), str(tiny_dir), "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "e.json").read_text())["psnr"] == report["psnr"]
    # a policy file works the same way
    policy_path = tmp_path / "p.json"
    policy_path.write_text(json.dumps(report["policy"]))
    result = runner.invoke(cli, ["quantize", str(tiny_checkpoint), str(tiny_dir), "--policy", str(policy_path),
                                 "--out", str(tmp_path / "q2.h5"), "--json", str(tmp_path / "q2.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "q2.json").read_text())["psnr"] == report["psnr"]
    result = runner.invoke(cli, ["points", str(tiny_checkpoint), "--set", "caq", "--json", str(tmp_path / "pts.json")])
    assert result.exit_code == 0 and "hash.all" in result.output
    assert len(json.loads((tmp_path / "pts.json").read_text())["points"]) == 15


@pytest.mark.parametrize("args, needle", [
    (["--uniform", "8", "--hash-bits", "4"], "exactly one of"),
    (["--hash-bits", "4"], "go together"),
    (["--uniform", "12"], "does not allow 12 bits"),
])
def test_quantize_bad_policy_options(tiny_checkpoint, tiny_dir, tmp_path, args, needle):
    result = CliRunner().invoke(cli, ["quantize", str(tiny_checkpoint), str(tiny_dir), *args, "--out", str(tmp_path / "q.h5")])
    assert result.exit_code == 2 and needle in result.output
    assert not (tmp_path / "q.h5").exists()
