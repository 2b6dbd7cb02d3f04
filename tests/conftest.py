"""Test setup: CPU JAX with 8 fake devices (the sharding tests need them), set before jax loads."""

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import pytest  # noqa: E402

GOLDEN_DIR = Path(__file__).parent / "golden"


@pytest.fixture(scope="session")
def golden_dir():
    return GOLDEN_DIR


@pytest.fixture(autouse=True)
def _reseed_module_rng(request):
    """Reseed a test module's RNG per test, from the test's name, so its inputs do not depend on
    which tests ran before it in the same process (pytest-xdist reorders them)."""
    import zlib
    rng = getattr(request.module, "RNG", None)
    if rng is not None:
        salt = os.environ.get("GIGAJAX_TEST_SEED", "")
        rng.seed(zlib.crc32((request.node.nodeid + salt).encode()))
