"""NGPModel: forward against a float64 NumPy reference, backward against finite differences, hooks."""

import dataclasses

import numpy as np
import pytest

from hero_lite.nerf.config import MAX_MARCH_STEPS, HashGridConfig, ModelConfig
from hero_lite.nerf.hashgrid import corner_indices
from hero_lite.nerf.hooks import ACTIVATION_POINTS, WEIGHT_PARAMS, WEIGHT_POINTS, QuantHooks
from hero_lite.nerf.model import MLP_PARAM_NAMES, PARAM_NAMES, NGPModel, check_model_aabb
from hero_lite.nerf.sh import sh_encode

# 4 levels, T = 2^10, N_min 4, N_max 32 (b = 2): res 4 and 8 are dense (64 + 512 entries),
# res 16 and 32 are hashed (1024 each): 2,624 entries. The low clamp makes some logits hit it.
CONFIG = ModelConfig(grid=HashGridConfig(n_levels=4, log2_table_size=10, base_res=4, max_res=32), density_logit_max=0.2)
AABB = np.array([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]], dtype=np.float32)
N_RAYS = 37
N_SAMPLES = 4500  # > 4096 rows, so the blocked matmuls use two row blocks
TOL = 2e-5


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class Problem:
    """A model with active ReLUs, random samples and loss L = sum(a * sigma) + sum(b * rgb)."""

    def __init__(self, seed=11):
        rng = np.random.default_rng(seed)
        self.model = NGPModel.create(CONFIG, AABB, rng)
        p = self.model.params
        p["hash_table"][:] = rng.uniform(-1, 1, size=p["hash_table"].shape)
        for name in MLP_PARAM_NAMES:
            p[name] *= 2.0  # Xavier x 2: pre-activations of order 1, about half the ReLUs active
        self.positions = rng.random((N_SAMPLES, 3)).astype(np.float32)
        dirs = rng.normal(size=(N_RAYS, 3))
        self.sh = sh_encode((dirs / np.linalg.norm(dirs, axis=1, keepdims=True)).astype(np.float32))
        self.ray_ids = np.sort(rng.integers(0, N_RAYS, size=N_SAMPLES)).astype(np.int64)
        self.a = rng.normal(size=N_SAMPLES).astype(np.float32)
        self.b = rng.normal(size=(N_SAMPLES, 3)).astype(np.float32)
        layout = self.model.layout
        self.rows = corner_indices(self.positions, layout) + layout.offsets[:-1][None, :, None]
        self.weights = np.empty((N_SAMPLES, layout.n_levels, 8))
        for level, scale in enumerate(layout.scales):
            pos = self.positions * scale + np.float32(0.5)
            frac = (pos - np.floor(pos)).astype(np.float64)
            for corner in range(8):
                bits = np.array([corner & 1, (corner >> 1) & 1, (corner >> 2) & 1])
                self.weights[:, level, corner] = np.prod(np.where(bits == 1, frac, 1.0 - frac), axis=1)

    def params64(self):
        return {k: v.astype(np.float64) for k, v in self.model.params.items()}

    def reference(self, p):
        """Independent float64 forward: hash encode, density MLP, exp with clamp, colour MLP, sigmoid."""
        n = N_SAMPLES
        feats = np.einsum("nlc,nlcf->nlf", self.weights, p["hash_table"][self.rows]).reshape(n, -1)
        h = np.maximum(feats @ p["density_w0"], 0.0)
        d = h @ p["density_w1"]
        sigma = np.exp(np.minimum(d[:, 0], CONFIG.density_logit_max))
        x = np.concatenate([d, self.sh.astype(np.float64)[self.ray_ids]], axis=1)
        x = np.maximum(x @ p["color_w0"], 0.0)
        x = np.maximum(x @ p["color_w1"], 0.0)
        rgb = _sigmoid(x @ p["color_w2"])
        return sigma, rgb, {"h": h, "d": d}

    def loss(self, p):
        sigma, rgb, _ = self.reference(p)
        return float(np.sum(self.a * sigma) + np.sum(self.b * rgb))

    def run(self, hooks=None):
        """Model forward + backward; returns copies of sigmas, rgbs and the gradients."""
        fwd = self.model.forward(self.positions, self.sh, self.ray_ids, hooks)
        sigmas, rgbs = fwd.sigmas.copy(), fwd.rgbs.copy()
        grads = {"hash_table": np.zeros_like(self.model.params["hash_table"])}
        self.model.backward(fwd, self.a, self.b, grads, hooks)
        return sigmas, rgbs, grads


@pytest.fixture(scope="module")
def problem():
    return Problem()


def test_param_shapes_and_macs():
    model = NGPModel.create(ModelConfig(), AABB, np.random.default_rng(0))
    shapes = {k: v.shape for k, v in model.params.items()}
    # 456,920 x 2 table; density 32 -> 64 -> 16; colour (16 + 16) -> 64 -> 64 -> 3
    assert shapes == {"hash_table": (456_920, 2), "density_w0": (32, 64), "density_w1": (64, 16),
                      "color_w0": (32, 64), "color_w1": (64, 64), "color_w2": (64, 3)}
    assert all(v.dtype == np.float32 for v in model.params.values())
    # 32*64 + 64*16 + 32*64 + 64*64 + 64*3 = 2048 + 1024 + 2048 + 4096 + 192 = 9,408
    assert ModelConfig().macs_per_sample == 9408 == sum(np.prod(shapes[k]) for k in MLP_PARAM_NAMES)
    assert model.occupancy.bitfield.all()


def test_model_rejects_wrong_param_shape():
    model = NGPModel.create(CONFIG, AABB, np.random.default_rng(0))
    params = dict(model.params)
    params["color_w1"] = np.zeros((64, 63), np.float32)
    with pytest.raises(ValueError, match="color_w1"):
        NGPModel(CONFIG, AABB, params, model.occupancy)
    del params["color_w1"]
    with pytest.raises(ValueError, match="color_w1"):
        NGPModel(CONFIG, AABB, params, model.occupancy)


def test_model_aabb_is_validated_before_allocating():
    # marching allocates in proportion to diagonal / step: +-1e30 once asked for 48 GiB
    for bad in ([[-1e30] * 3, [1e30] * 3], [[1, 1, 1], [-1, -1, -1]], [[np.nan] * 3, [1] * 3], [[0] * 3, [0] * 3]):
        with pytest.raises(ValueError, match="model aabb must be"):
            NGPModel.create(CONFIG, np.array(bad, np.float32), np.random.default_rng(0))
    # a box the scene loader accepts but that is too many steps of a fine render step
    fine = ModelConfig(step_size=0.001)
    with pytest.raises(ValueError, match=f"spans .* marching steps .*valid: at most {MAX_MARCH_STEPS}"):
        check_model_aabb([[-20] * 3, [20] * 3], fine)


def test_default_model_accepts_every_scene_box_the_loader_accepts():
    from hero_lite.scenes.blender import MAX_AABB_EXTENT

    half = MAX_AABB_EXTENT / 2
    box = check_model_aabb([[-half] * 3, [half] * 3], ModelConfig())
    assert box.dtype == np.float32 and box.shape == (2, 3)


def test_forward_matches_float64_reference(problem):
    sigmas, rgbs, _ = problem.run()
    sigma_ref, rgb_ref, inner = problem.reference(problem.params64())
    # the problem is set up so the gradient check below is meaningful
    active = (inner["h"] > 0).mean()
    clamped = (inner["d"][:, 0] > CONFIG.density_logit_max).mean()
    assert 0.2 < active < 0.8, active
    assert 0.05 < clamped < 0.95, clamped
    assert sigmas.dtype == np.float32 and rgbs.dtype == np.float32
    np.testing.assert_allclose(sigmas, sigma_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rgbs, rgb_ref, rtol=1e-5, atol=1e-6)


def _central_difference(problem, p, name, index, eps=1e-6):
    up = {k: v for k, v in p.items()}
    up[name] = p[name].copy()
    up[name][index] += eps
    down = {k: v for k, v in p.items()}
    down[name] = p[name].copy()
    down[name][index] -= eps
    return (problem.loss(up) - problem.loss(down)) / (2 * eps)


def test_backward_matches_finite_differences(problem):
    _, _, grads = problem.run()
    p = problem.params64()
    rng = np.random.default_rng(5)
    for name in MLP_PARAM_NAMES:
        g = grads[name]
        assert g.shape == p[name].shape and g.dtype == np.float32
        flat = rng.choice(g.size, size=min(50, g.size), replace=False)
        for k in flat:
            index = np.unravel_index(k, g.shape)
            fd = _central_difference(problem, p, name, index)
            # tolerance 2e-5 relative to the largest entry of that gradient matrix (float32 error
            # measured at <= 3e-7 of it; a 0.1% error in any backward step is caught)
            assert abs(g[index] - fd) <= TOL * (np.abs(g).max() + abs(fd)), (name, index, g[index], fd)

    g = grads["hash_table"]
    touched = np.unique(problem.rows.ravel())
    untouched = np.setdiff1d(np.arange(g.shape[0]), touched)
    assert np.all(g[untouched] == 0.0)
    for row in rng.choice(touched, size=50, replace=False):
        f = int(rng.integers(0, g.shape[1]))
        fd = _central_difference(problem, p, "hash_table", (row, f))
        assert abs(g[row, f] - fd) <= TOL * (np.abs(g).max() + abs(fd)), (row, f, g[row, f], fd)


def test_backward_accumulates_table_gradient(problem):
    _, _, grads = problem.run()
    once = grads["hash_table"].copy()
    once_w = grads["color_w1"].copy()
    fwd = problem.model.forward(problem.positions, problem.sh, problem.ray_ids)
    problem.model.backward(fwd, problem.a, problem.b, grads)
    # the table gradient is accumulated in place (g + g, up to float32 rounding of the partial sums)
    np.testing.assert_allclose(grads["hash_table"], 2 * once, rtol=1e-5, atol=1e-6 * np.abs(once).max())
    # MLP weight gradients are replaced, not accumulated
    np.testing.assert_array_equal(grads["color_w1"], once_w)


def test_density_and_query_agree_with_forward(problem):
    sigmas, rgbs, _ = problem.run()
    np.testing.assert_allclose(problem.model.density(problem.positions, chunk=1000), sigmas, rtol=1e-6, atol=1e-7)
    q_sigmas, q_rgbs = problem.model.query(problem.positions, problem.sh, problem.ray_ids, chunk=1000)
    np.testing.assert_allclose(q_sigmas, sigmas, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(q_rgbs, rgbs, rtol=1e-6, atol=1e-7)


def test_normalize_maps_aabb_to_unit_cube(problem):
    pts = np.array([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5], [0, 0.75, -3]], np.float32)
    # (p - min) / (max - min), clipped: (0,0,0), (1,1,1), (0.5, 0.75, 0)
    np.testing.assert_allclose(problem.model.normalize(pts), [[0, 0, 0], [1, 1, 1], [0.5, 0.75, 0]])


class RecordingHooks(QuantHooks):
    """Active identity hooks that record every call."""

    active = True

    def __init__(self):
        self.calls = []

    def table(self, table):
        self.calls.append("table")
        return table

    def table_backward(self, grad_table, table):
        self.calls.append("table_backward")

    def weight(self, name, weight):
        self.calls.append(("weight", name))
        return weight

    def weight_backward(self, name, grad, weight):
        self.calls.append(("weight_backward", name))

    def activation(self, name, x):
        self.calls.append(("activation", name))
        return x

    def activation_backward(self, name, grad, x):
        self.calls.append(("activation_backward", name))


def test_identity_hooks_give_identical_results(problem):
    base = problem.run(None)
    inactive = problem.run(QuantHooks())
    recording = RecordingHooks()
    active = problem.run(recording)
    for other in (inactive, active):
        np.testing.assert_array_equal(other[0], base[0])
        np.testing.assert_array_equal(other[1], base[1])
        for name in PARAM_NAMES:
            np.testing.assert_array_equal(other[2][name], base[2][name])
    # every quantization point was visited, forward and backward (SH features have no gradient)
    calls = recording.calls
    assert "table" in calls and "table_backward" in calls
    assert {c[1] for c in calls if c[0] == "weight"} == set(WEIGHT_POINTS)
    assert {c[1] for c in calls if c[0] == "weight_backward"} == set(WEIGHT_POINTS)
    assert {c[1] for c in calls if c[0] == "activation"} == set(ACTIVATION_POINTS)
    assert {c[1] for c in calls if c[0] == "activation_backward"} == set(ACTIVATION_POINTS) - {"act.sh"}


class DoubleWeightHooks(QuantHooks):
    """Uses 2 W for one matrix; the straight-through backward is then dL/dW = 2 dL/d(2W)."""

    active = True

    def __init__(self, point):
        self.point = point

    def weight(self, name, weight):
        return 2 * weight if name == self.point else weight

    def weight_backward(self, name, grad, weight):
        if name == self.point:
            grad *= 2


@pytest.mark.parametrize("point", ["w.density0", "w.color1"])
def test_weight_hook_output_is_what_forward_and_backward_use(point):
    problem = Problem(seed=3)
    hooked = problem.run(DoubleWeightHooks(point))
    param = WEIGHT_PARAMS[point]
    problem.model.params[param] *= 2
    doubled = problem.run(None)
    np.testing.assert_allclose(hooked[0], doubled[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(hooked[1], doubled[1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(hooked[2][param], 2 * doubled[2][param], rtol=1e-5, atol=1e-6 * np.abs(doubled[2][param]).max())
    np.testing.assert_allclose(hooked[2]["hash_table"], doubled[2]["hash_table"], rtol=1e-5, atol=1e-7)


def test_inference_marches_at_the_render_step():
    """model.render uses step_size / render_substeps: with every cell occupied and a field too thin
    to terminate rays, the samples per ray scale with render_substeps."""
    counts = {}
    for substeps in (1, 2):
        config = dataclasses.replace(CONFIG, render_substeps=substeps)
        model = NGPModel.create(config, AABB, np.random.default_rng(0))
        model.occupancy.bitfield[...] = True
        model.params["hash_table"][...] = 0.0  # density exp(0) * dt: far from terminating a ray
        origins = np.tile(np.float32([[0.0, 0.0, 4.0]]), (5, 1))
        directions = np.tile(np.float32([[0.0, 0.0, -1.0]]), (5, 1))
        counts[substeps] = model.render(origins, directions).samples_per_ray
    extent = float(AABB[1, 2] - AABB[0, 2])
    for substeps, samples in counts.items():
        np.testing.assert_allclose(samples, extent / (CONFIG.step_size / substeps), atol=1)
