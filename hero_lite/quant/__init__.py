"""Mixed-precision quantization of the NeRF: quantization points, policies, quantizers with a
clipped straight-through gradient, calibration, quantization-aware training (QAT), bit-packed
export and CAQ-like learned bit-widths.

    from hero_lite.quant import quant_points, quantize_model, uniform_policy
    policy = uniform_policy(model.config, hash_bits=6, mlp_bits=8)
    points = quant_points(model.config)       # the list the search walks, one per tensor

Imports `hero_lite.nerf` and `hero_lite.scenes`.
"""

from hero_lite.quant.export import is_quantized_checkpoint, load_quantized, save_quantized
from hero_lite.quant.fakequant import FakeQuantHooks
from hero_lite.quant.learned import BitLearningConfig, BitLearningResult, learn_bit_widths
from hero_lite.quant.points import FLOAT_BITS, QuantPoint, model_bytes, quant_points
from hero_lite.quant.policy import QuantPolicy, fp32_policy, uniform_policy
from hero_lite.quant.qat import quantization_aware_training
from hero_lite.quant.quantizers import fake_quant, ste_grad
from hero_lite.quant.run import load_any_checkpoint, quantize_model, quantize_run

__all__ = [
    "FLOAT_BITS",
    "BitLearningConfig",
    "BitLearningResult",
    "FakeQuantHooks",
    "QuantPoint",
    "QuantPolicy",
    "fake_quant",
    "fp32_policy",
    "is_quantized_checkpoint",
    "learn_bit_widths",
    "load_any_checkpoint",
    "load_quantized",
    "model_bytes",
    "quant_points",
    "quantization_aware_training",
    "quantize_model",
    "quantize_run",
    "save_quantized",
    "ste_grad",
    "uniform_policy",
]
