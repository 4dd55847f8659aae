"""Fixtures of the command-line tests, shared with tests/test_bad_inputs.py."""

from tests.test_bad_inputs import small_checkpoint  # noqa: F401  (an untrained small fp32 checkpoint, fast to make)
