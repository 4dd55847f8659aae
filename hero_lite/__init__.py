"""hero-lite: hardware-aware mixed-precision quantization of NeRFs on a CPU (HERO, arXiv 2510.09010)."""

__version__ = "0.1.0"
