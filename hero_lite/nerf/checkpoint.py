"""HDF5 checkpoints of the NGP model, written atomically.

Layout (format `hero-lite-checkpoint`, version 1):

```
/                      attrs: format, format_version, kind ("fp32"), hero_lite_version,
                              model_config (JSON), metadata (JSON: steps, seed, scene, timings ...)
/aabb                  (2, 3) float32, scene box in world units
/params/hash_table     (n_entries, n_feat) float32, levels concatenated (see HashGridLayout.offsets)
/params/density_w0     (32, 64) float32, weights stored (fan_in, fan_out): y = x @ W
/params/density_w1     (64, 16) float32
/params/color_w0       (32, 64) float32
/params/color_w1       (64, 64) float32
/params/color_w2       (64, 3) float32
/occupancy/values      (res, res, res) float32 optical thickness, indexed [z, y, x]
/occupancy/bitfield    (res, res, res) uint8, 1 = occupied
```

Quantized checkpoints (hero_lite.quant) use the same file format with kind "quantized" and extra
groups; `read_common` reads what both kinds share.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from hero_lite import __version__
from hero_lite.nerf.config import ModelConfig
from hero_lite.nerf.model import PARAM_NAMES, NGPModel, check_model_aabb, param_shapes
from hero_lite.nerf.occupancy import OccupancyGrid
from hero_lite.runfolder import write_atomically

FORMAT = "hero-lite-checkpoint"
FORMAT_VERSION = 1


def write_model_groups(f: h5py.File, model: NGPModel, kind: str, metadata: dict[str, Any], params: bool = True) -> None:
    """Write the attributes, aabb, occupancy and (if `params`) fp32 parameters of `model` into `f`."""
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["kind"] = kind
    f.attrs["hero_lite_version"] = __version__
    f.attrs["model_config"] = json.dumps(model.config.to_dict())
    f.attrs["metadata"] = json.dumps(metadata)
    f.create_dataset("aabb", data=model.aabb.astype(np.float32))
    if params:
        group = f.create_group("params")
        for name in PARAM_NAMES:
            group.create_dataset(name, data=model.params[name])
    occ = f.create_group("occupancy")
    occ.create_dataset("values", data=model.occupancy.values, compression="gzip")
    occ.create_dataset("bitfield", data=model.occupancy.bitfield.astype(np.uint8), compression="gzip")


def save_checkpoint(path: str | os.PathLike, model: NGPModel, metadata: dict[str, Any] | None = None) -> None:
    """Write an fp32 checkpoint of `model` (layout in the module docstring), atomically."""

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            write_model_groups(f, model, "fp32", metadata or {})

    write_atomically(path, write)


def require_node(f: h5py.File, key: str, path: str):
    """The group or dataset `key` of an open checkpoint; a ValueError naming the file if it is missing."""
    try:
        present = key in f
    except (KeyError, TypeError, ValueError):
        present = False
    if not present:
        raise ValueError(f"checkpoint {path} is missing '{key}' (corrupt or not a hero-lite checkpoint)")
    return f[key]


def read_dataset(f: h5py.File, key: str, path: str, shape: tuple[int, ...] | None = None,
                 kinds: str = "fiub") -> np.ndarray:
    """The array of dataset `key`, checked before it is read.

    Parameters
    ----------
    shape : the shape the model config implies (None: any); checked first, so a corrupt shape
        never allocates. kinds : allowed numpy dtype kinds ('f' float, 'i'/'u' integer, 'b' bool).

    Raises
    ------
    ValueError naming the file and the dataset.
    """
    data = require_node(f, key, path)
    if not isinstance(data, h5py.Dataset):
        raise ValueError(f"checkpoint {path}: '{key}' is not a dataset")
    if shape is not None and data.shape != tuple(shape):
        raise ValueError(
            f"checkpoint {path}: dataset '{key}' has shape {data.shape}; the model config needs {tuple(shape)}"
        )
    if data.dtype.kind not in kinds:
        raise ValueError(f"checkpoint {path}: dataset '{key}' has dtype {data.dtype}; valid: numbers")
    return np.asarray(data[()])


def open_checkpoint(path: str | os.PathLike) -> h5py.File:
    """Open a checkpoint for reading, with one clear error for a missing or non-HDF5 file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"checkpoint {path} is not a readable HDF5 file ({exc.__class__.__name__})") from None
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise ValueError(f"checkpoint {path} is not a hero-lite checkpoint (no format attribute '{FORMAT}')")
    try:
        version = int(f.attrs.get("format_version", -1))
    except (TypeError, ValueError):
        version = -1
    if version != FORMAT_VERSION:
        f.close()
        raise ValueError(f"checkpoint {path} has format version {version}; this hero-lite reads version {FORMAT_VERSION}")
    return f


def read_common(f: h5py.File, path: str) -> tuple[ModelConfig, np.ndarray, OccupancyGrid, dict[str, Any]]:
    """Model config, aabb, occupancy grid and metadata of an open checkpoint.

    Everything is validated against the model config before use: the aabb (finite, min < max,
    bounded extent: `check_model_aabb`), the occupancy grid ((res, res, res) with res =
    `occupancy_res`, finite values). Errors are ValueErrors naming the file and the dataset.
    """
    try:
        config = ModelConfig.from_dict(json.loads(f.attrs["model_config"]))
        metadata = json.loads(f.attrs.get("metadata", "{}"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"checkpoint {path} has a missing or malformed model_config/metadata attribute ({exc})") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint {path}: attribute model_config: {exc}") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"checkpoint {path}: attribute metadata must be a JSON object, got {type(metadata).__name__}")
    aabb = read_dataset(f, "aabb", path, (2, 3), kinds="fiu")
    aabb = check_model_aabb(aabb, config, f"checkpoint {path}: dataset 'aabb'")
    res = config.occupancy_res
    values = read_dataset(f, "occupancy/values", path, (res, res, res), kinds="fiu").astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"checkpoint {path}: dataset 'occupancy/values' must be finite (optical thickness per cell)")
    bits = read_dataset(f, "occupancy/bitfield", path, (res, res, res), kinds="iub").astype(bool)
    return config, aabb, OccupancyGrid(values=values, bitfield=bits), metadata


def load_checkpoint(path: str | os.PathLike) -> tuple[NGPModel, dict[str, Any]]:
    """Read an fp32 checkpoint.

    Returns
    -------
    model : NGPModel; metadata : dict (training metadata written by `save_checkpoint`).

    Raises
    ------
    FileNotFoundError, ValueError with one line naming the file and the problem.
    """
    path = os.fspath(path)
    with open_checkpoint(path) as f:
        kind = f.attrs.get("kind")
        if kind != "fp32":
            raise ValueError(f"checkpoint {path} is a '{kind}' checkpoint; expected an fp32 checkpoint")
        config, aabb, occupancy, metadata = read_common(f, path)
        params = {}
        shapes = param_shapes(config)
        for name in PARAM_NAMES:
            data = read_dataset(f, f"params/{name}", path, shapes[name])
            if data.dtype != np.float32 or not np.all(np.isfinite(data)):
                raise ValueError(f"checkpoint {path}: params/{name} must be finite float32")
            params[name] = data
    try:
        model = NGPModel(config, aabb, params, occupancy)
    except ValueError as exc:
        raise ValueError(f"checkpoint {path}: {exc}") from None
    return model, metadata
