"""NGPModel: hash grid + SH-4 + density MLP 32->64->16 + colour MLP 32->64->64->3, no biases.

Forward and backward are written by hand (NGP paper section 5.4; tcnn NeRF network): the density
MLP's output column 0 is the log-density (sigma = exp(min(logit, logit_max))); all 16 density
outputs plus the 16 SH features feed the colour MLP, whose output goes through a sigmoid.

Every quantizable tensor passes through a `QuantHooks` call (see `hero_lite.nerf.hooks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hero_lite.nerf.config import MAX_MARCH_STEPS, ModelConfig
from hero_lite.nerf.hashgrid import HashGridLayout, encode, encode_backward, init_table
from hero_lite.nerf.hooks import WEIGHT_PARAMS, QuantHooks
from hero_lite.nerf._linalg import dense_backward, dense_forward, n_row_blocks, single_threaded_blas, sum_partials
from hero_lite.nerf.mlp import density_activation, gather_color_input, output_backward, sigmoid, xavier_uniform
from hero_lite.nerf.occupancy import OccupancyGrid
from hero_lite.nerf.render import max_march_steps
from hero_lite.nerf.sh import sh_encode
from hero_lite.scenes.blender import check_aabb

PARAM_NAMES = ("hash_table", "density_w0", "density_w1", "color_w0", "color_w1", "color_w2")
MLP_PARAM_NAMES = PARAM_NAMES[1:]
_IDENTITY = QuantHooks()


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Shape of every parameter of a model with `config` (see `NGPModel.params`)."""
    h = config.hidden_width
    return {
        "hash_table": (HashGridLayout.from_config(config.grid).n_entries, config.grid.n_feat),
        "density_w0": (config.encoding_width, h),
        "density_w1": (h, config.geo_feat),
        "color_w0": (config.color_in_width, h),
        "color_w1": (h, h),
        "color_w2": (h, 3),
    }


def check_model_aabb(aabb, config: ModelConfig, where: str = "model aabb") -> np.ndarray:
    """Validate a model's scene box; return it as (2, 3) float32.

    Besides `hero_lite.scenes.blender.check_aabb` (finite, min < max, bounded extent), the box
    diagonal may span at most MAX_MARCH_STEPS steps of `config.render_step_size`: marching
    allocates samples in proportion to it. E.g. the default [-1.5, 1.5]^3 box spans 513 steps.
    """
    box = check_aabb(aabb, where)
    steps = max_march_steps(box, config.render_step_size)
    if steps > MAX_MARCH_STEPS:
        raise ValueError(
            f"{where} {box.tolist()} spans {steps} marching steps of {config.render_step_size:.4g} world units; "
            f"valid: at most {MAX_MARCH_STEPS} (a smaller box or a larger step_size)"
        )
    return box


class Workspace:
    """Grow-only float32 buffers reused across steps, so no activation-sized array is allocated per step."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, rows: int, width: int) -> np.ndarray:
        """A C-contiguous (rows, width) float32 view of the buffer `name` (contents undefined)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < rows or buf.shape[1] != width:
            capacity = max(rows, 1024) if buf is None else max(rows, int(buf.shape[0] * 1.25))
            buf = np.empty((capacity, width), dtype=np.float32)
            self._buffers[name] = buf
        return buf[:rows]


@dataclass
class ForwardPass:
    """Activations of one forward pass, kept for the backward pass.

    All arrays have n_samples rows and are float32 unless noted. `*_q` arrays are what the next
    layer consumed (the fake-quantized value under active hooks, the same array otherwise).
    """

    positions: np.ndarray  # (n, 3) unit cube
    ray_ids: np.ndarray  # (n,) int64
    features: np.ndarray  # (n, L*F) hash-grid output
    features_q: np.ndarray
    density_hidden: np.ndarray  # (n, 64) after ReLU
    density_hidden_q: np.ndarray
    density_out: np.ndarray  # (n, 16), column 0 is the log-density
    density_out_q: np.ndarray
    color_in: np.ndarray  # (n, 32) = [density_out_q, sh_q[ray]]
    color_hidden0: np.ndarray  # (n, 64) after ReLU
    color_hidden0_q: np.ndarray
    color_hidden1: np.ndarray
    color_hidden1_q: np.ndarray
    color_logits: np.ndarray  # (n, 3) before sigmoid
    color_logits_q: np.ndarray
    sigmas_pre: np.ndarray  # (n,) 1/world unit, exp of the log-density
    rgbs_pre: np.ndarray  # (n, 3) in [0, 1], sigmoid output
    sigmas: np.ndarray  # (n,) what compositing uses (act.sigma applied)
    rgbs: np.ndarray  # (n, 3) what compositing uses (act.rgb applied)
    weights_used: dict[str, np.ndarray] = field(default_factory=dict)


class NGPModel:
    """Instant-NGP-lite radiance field.

    Attributes
    ----------
    config : ModelConfig.
    layout : HashGridLayout of the table.
    params : dict name -> float32 array: `hash_table` (n_entries, F), `density_w0` (32, 64),
        `density_w1` (64, 16), `color_w0` (32, 64), `color_w1` (64, 64), `color_w2` (64, 3).
        Weights are (fan_in, fan_out).
    aabb : (2, 3) float32 scene box, world units; positions are normalised to its unit cube.
    occupancy : OccupancyGrid over the aabb.
    """

    def __init__(self, config: ModelConfig, aabb: np.ndarray, params: dict[str, np.ndarray], occupancy: OccupancyGrid):
        self.config = config
        self.layout = HashGridLayout.from_config(config.grid)
        self.aabb = check_model_aabb(aabb, config)
        expected = self.param_shapes()
        for name, shape in expected.items():
            if name not in params:
                raise ValueError(f"model parameters lack '{name}'")
            if params[name].shape != shape:
                raise ValueError(f"parameter '{name}' has shape {params[name].shape}, the config needs {shape}")
        self.params = {name: np.ascontiguousarray(params[name], dtype=np.float32) for name in PARAM_NAMES}
        self.occupancy = occupancy
        self.workspace = Workspace()
        single_threaded_blas()

    def copy(self) -> "NGPModel":
        """An independent copy (parameters and occupancy grid)."""
        occupancy = OccupancyGrid(self.occupancy.values.copy(), self.occupancy.bitfield.copy())
        return NGPModel(self.config, self.aabb.copy(), {k: v.copy() for k, v in self.params.items()}, occupancy)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return param_shapes(self.config)

    @classmethod
    def create(cls, config: ModelConfig, aabb: np.ndarray, rng: np.random.Generator) -> "NGPModel":
        """A freshly initialised model: table ~ U(-1e-4, 1e-4), Xavier-uniform weights, all cells occupied."""
        layout = HashGridLayout.from_config(config.grid)
        h = config.hidden_width
        params = {
            "hash_table": init_table(layout, rng),
            "density_w0": xavier_uniform(config.encoding_width, h, rng),
            "density_w1": xavier_uniform(h, config.geo_feat, rng),
            "color_w0": xavier_uniform(config.color_in_width, h, rng),
            "color_w1": xavier_uniform(h, h, rng),
            "color_w2": xavier_uniform(h, 3, rng),
        }
        return cls(config, aabb, params, OccupancyGrid.create(config.occupancy_res))

    # ------------------------------------------------------------------ forward / backward

    def forward(self, positions: np.ndarray, sh_per_ray: np.ndarray, ray_ids: np.ndarray, hooks: QuantHooks | None = None,
                features: np.ndarray | None = None) -> ForwardPass:
        """Densities and colours of samples, keeping what the backward pass needs.

        Parameters
        ----------
        positions : (n_samples, 3) float32 in the unit cube of the aabb.
        sh_per_ray : (n_rays, 16) float32 SH features of each ray's direction (`sh_encode`).
        ray_ids : (n_samples,) int64, the ray of each sample.
        hooks : QuantHooks or None (no quantization).
        features : optional (n_samples, L*F) float32 hash-grid output of `positions` under the same
            hooks (e.g. kept by `density(..., features_out=)`); None encodes them here.

        The returned arrays live in the model's workspace: they are overwritten by the next call.
        """
        hooks = hooks if hooks is not None and hooks.active else None
        hk = hooks or _IDENTITY
        c = self.config
        ws = self.workspace
        n = positions.shape[0]
        h = c.hidden_width
        p = self.params
        w_used = {name: hk.weight(name, p[param]) for name, param in WEIGHT_PARAMS.items()}

        if features is None:
            table = hk.table(p["hash_table"])
            features = encode(positions, table, self.layout, out=ws.get("features", n, c.encoding_width))
        elif features.shape != (n, c.encoding_width):
            raise ValueError(f"features must have shape {(n, c.encoding_width)}, got {features.shape}")
        features_q = hk.activation("act.encoding", features)

        density_hidden = ws.get("density_hidden", n, h)
        dense_forward(features_q, w_used["w.density0"], density_hidden, True)
        density_hidden_q = hk.activation("act.density_hidden", density_hidden)

        density_out = ws.get("density_out", n, c.geo_feat)
        dense_forward(density_hidden_q, w_used["w.density1"], density_out, False)
        density_out_q = hk.activation("act.density_out", density_out)
        sigmas_pre = ws.get("sigmas", n, 1)
        density_activation(density_out_q, np.float32(c.density_logit_max), sigmas_pre.reshape(n))
        sigmas = hk.activation("act.sigma", sigmas_pre).reshape(n)

        sh_q = hk.activation("act.sh", np.ascontiguousarray(sh_per_ray, dtype=np.float32))
        color_in = ws.get("color_in", n, c.color_in_width)
        gather_color_input(density_out_q, sh_q, ray_ids, color_in)

        color_hidden0 = ws.get("color_hidden0", n, h)
        dense_forward(color_in, w_used["w.color0"], color_hidden0, True)
        color_hidden0_q = hk.activation("act.color_hidden0", color_hidden0)
        color_hidden1 = ws.get("color_hidden1", n, h)
        dense_forward(color_hidden0_q, w_used["w.color1"], color_hidden1, True)
        color_hidden1_q = hk.activation("act.color_hidden1", color_hidden1)
        color_logits = ws.get("color_logits", n, 3)
        dense_forward(color_hidden1_q, w_used["w.color2"], color_logits, False)
        color_logits_q = hk.activation("act.color_out", color_logits)
        rgbs_pre = ws.get("rgbs", n, 3)
        sigmoid(color_logits_q, rgbs_pre)
        rgbs = hk.activation("act.rgb", rgbs_pre)
        return ForwardPass(
            positions=positions, ray_ids=ray_ids,
            features=features, features_q=features_q,
            density_hidden=density_hidden, density_hidden_q=density_hidden_q,
            density_out=density_out, density_out_q=density_out_q,
            color_in=color_in,
            color_hidden0=color_hidden0, color_hidden0_q=color_hidden0_q,
            color_hidden1=color_hidden1, color_hidden1_q=color_hidden1_q,
            color_logits=color_logits, color_logits_q=color_logits_q,
            sigmas_pre=sigmas_pre.reshape(n), rgbs_pre=rgbs_pre, sigmas=sigmas, rgbs=rgbs, weights_used=w_used,
        )

    def backward(self, fwd: ForwardPass, grad_sigmas: np.ndarray, grad_rgbs: np.ndarray, grads: dict[str, np.ndarray],
                 hooks: QuantHooks | None = None) -> None:
        """Back-propagate dL/dsigma and dL/drgb of a `forward` into parameter gradients.

        Parameters
        ----------
        fwd : the ForwardPass (its buffers must not have been overwritten).
        grad_sigmas : (n_samples,) float32; grad_rgbs : (n_samples, 3) float32 (masked in place by
            active hooks of act.sigma and act.rgb).
        grads : dict with `hash_table` (n_entries, F) float32, accumulated in place (rows no sample
            touches stay zero); MLP weight gradients are written into the dict (new arrays).
        hooks : the same hooks as the forward pass.
        """
        hooks = hooks if hooks is not None and hooks.active else None
        c = self.config
        ws = self.workspace
        n = fwd.positions.shape[0]
        h = c.hidden_width
        w = fwd.weights_used

        n_blocks = n_row_blocks(n)
        no_mask = ws.get("empty", 0, h)

        def act_back(name, grad, x):
            if hooks is not None:
                hooks.activation_backward(name, grad, x)

        def layer_back(name, x_q, grad_out, grad_in, relu_out):
            # grad_in = grad_out @ W.T masked by the ReLU that produced x; returns dL/dW
            k, m = w[name].shape
            partial = ws.get("partial." + name, n_blocks * k, m).reshape(n_blocks, k, m)
            dense_backward(x_q, grad_out, w[name], grad_in, relu_out, partial)
            return sum_partials(partial, n) if n else np.zeros((k, m), dtype=np.float32)

        act_back("act.sigma", grad_sigmas.reshape(n, 1), fwd.sigmas_pre.reshape(n, 1))
        act_back("act.rgb", grad_rgbs, fwd.rgbs_pre)
        grad_density_out = ws.get("grad_density_out", n, c.geo_feat)
        grad_density_out[:] = 0.0
        grad_logits = ws.get("grad_color_logits", n, 3)
        output_backward(grad_sigmas, fwd.sigmas_pre, fwd.density_out_q, np.float32(c.density_logit_max), grad_rgbs,
                        fwd.rgbs_pre, grad_density_out, grad_logits)
        act_back("act.color_out", grad_logits, fwd.color_logits)

        dW = {}
        grad_h1 = ws.get("grad_color_hidden1", n, h)
        dW["w.color2"] = layer_back("w.color2", fwd.color_hidden1_q, grad_logits, grad_h1, fwd.color_hidden1)
        act_back("act.color_hidden1", grad_h1, fwd.color_hidden1)
        grad_h0 = ws.get("grad_color_hidden0", n, h)
        dW["w.color1"] = layer_back("w.color1", fwd.color_hidden0_q, grad_h1, grad_h0, fwd.color_hidden0)
        act_back("act.color_hidden0", grad_h0, fwd.color_hidden0)
        # The colour input's gradient is only needed for its density half (SH features are fixed),
        # so the weight gradient and the input gradient are two calls.
        dW["w.color0"] = layer_back("w.color0", fwd.color_in, grad_h0, ws.get("none", n, 0), no_mask)
        grad_geo = ws.get("grad_geo", n, c.geo_feat)
        dense_forward(grad_h0, np.ascontiguousarray(w["w.color0"][: c.geo_feat].T), grad_geo, False)
        grad_density_out += grad_geo
        act_back("act.density_out", grad_density_out, fwd.density_out)

        grad_dh = ws.get("grad_density_hidden", n, h)
        dW["w.density1"] = layer_back("w.density1", fwd.density_hidden_q, grad_density_out, grad_dh, fwd.density_hidden)
        act_back("act.density_hidden", grad_dh, fwd.density_hidden)
        grad_features = ws.get("grad_features", n, c.encoding_width)
        dW["w.density0"] = layer_back("w.density0", fwd.features_q, grad_dh, grad_features, no_mask.reshape(0, c.encoding_width))
        act_back("act.encoding", grad_features, fwd.features)

        encode_backward(fwd.positions, grad_features, self.layout, grads["hash_table"])
        if hooks is not None:
            hooks.table_backward(grads["hash_table"], self.params["hash_table"])
        for name, param in WEIGHT_PARAMS.items():
            if hooks is not None:
                hooks.weight_backward(name, dW[name], self.params[param])
            grads[param] = dW[name]

    # ------------------------------------------------------------------ inference

    def query(self, positions: np.ndarray, sh_per_ray: np.ndarray, ray_ids: np.ndarray, hooks: QuantHooks | None = None,
              chunk: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
        """Densities (n,) and colours (n, 3) of samples, float32, without keeping activations."""
        n = positions.shape[0]
        sigmas = np.empty(n, dtype=np.float32)
        rgbs = np.empty((n, 3), dtype=np.float32)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            fwd = self.forward(positions[start:stop], sh_per_ray, ray_ids[start:stop], hooks)
            sigmas[start:stop] = fwd.sigmas
            rgbs[start:stop] = fwd.rgbs
        return sigmas, rgbs

    def density(self, positions: np.ndarray, hooks: QuantHooks | None = None, chunk: int = 1 << 16,
                features_out: np.ndarray | None = None) -> np.ndarray:
        """Densities of points (density MLP only), (n,) float32 in 1/world unit.

        features_out : optional C-contiguous (n, L*F) float32 array that receives the hash-grid
            output of the points (what `forward(..., features=)` takes).
        """
        hooks = hooks if hooks is not None and hooks.active else None
        hk = hooks or _IDENTITY
        c = self.config
        ws = self.workspace
        p = self.params
        table = hk.table(p["hash_table"])
        w0 = hk.weight("w.density0", p["density_w0"])
        w1 = hk.weight("w.density1", p["density_w1"])
        n = positions.shape[0]
        if features_out is not None and (features_out.shape != (n, c.encoding_width) or not features_out.flags.c_contiguous):
            raise ValueError(f"features_out must be a C-contiguous {(n, c.encoding_width)} array, got {features_out.shape}")
        sigmas = np.empty(n, dtype=np.float32)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            m = stop - start
            out_rows = ws.get("features", m, c.encoding_width) if features_out is None else features_out[start:stop]
            features = encode(positions[start:stop], table, self.layout, out=out_rows)
            features = hk.activation("act.encoding", features)
            hidden = ws.get("density_hidden", m, c.hidden_width)
            dense_forward(features, w0, hidden, True)
            hidden = hk.activation("act.density_hidden", hidden)
            out = ws.get("density_out", m, c.geo_feat)
            dense_forward(hidden, w1, out, False)
            out = hk.activation("act.density_out", out)
            density_activation(out, np.float32(c.density_logit_max), sigmas[start:stop])
            sigmas[start:stop] = hk.activation("act.sigma", sigmas[start:stop].reshape(m, 1)).reshape(m)
        return sigmas

    def normalize(self, points: np.ndarray) -> np.ndarray:
        """World points (n, 3) -> unit-cube coordinates of the aabb, float32, clipped to [0, 1]."""
        unit = (np.asarray(points, dtype=np.float32) - self.aabb[0]) / (self.aabb[1] - self.aabb[0])
        return np.clip(unit, 0.0, 1.0).astype(np.float32)

    def render(self, origins: np.ndarray, directions: np.ndarray, background=(1.0, 1.0, 1.0), hooks: QuantHooks | None = None,
               on_samples=None):
        """Inference render of rays at `config.render_step_size`, occupancy skipping, early termination.

        Parameters
        ----------
        origins, directions : (n_rays, 3) float32, unit directions, world frame.
        background : RGB in [0, 1].

        Returns
        -------
        RenderResult (colors (n_rays, 3), opacity (n_rays,), samples_per_ray (n_rays,)).
        """
        from hero_lite.nerf.render import render_rays

        directions = np.ascontiguousarray(directions, dtype=np.float32)
        sh = sh_encode(directions)

        def field_fn(positions, _dirs, ray_ids):
            return self.query(positions, sh, ray_ids, hooks)

        return render_rays(origins, directions, field_fn, self.aabb, self.occupancy.bitfield,
                           self.config.render_step_size, np.asarray(background, dtype=np.float32),
                           on_samples=on_samples)
