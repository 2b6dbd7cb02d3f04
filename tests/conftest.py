"""Test setup: CPU JAX with 8 fake devices (the sharding tests need them), set before jax loads."""

import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# XLA's persistent compile cache (as .ci/run sets it), so a re-run of the suite, and the
# experiment subprocesses the tests start, reuse the compiles: ~11 instead of ~22 minutes on 2 cores.
_CACHE = Path(os.environ.get("GIGAJAX_CACHE") or "~/.cache/gigajax").expanduser()
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE / "jax_compilation_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
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
        seed = zlib.crc32((request.node.nodeid + salt).encode())
        if hasattr(rng, "seed"):          # np.random.RandomState
            rng.seed(seed)
        else:                             # np.random.Generator: reseed its bit generator in place
            rng.bit_generator.state = type(rng.bit_generator)(seed).state


@pytest.fixture(autouse=True)
def _one_torch_thread_per_worker():
    """Under pytest-xdist each worker already has a core: torch's OpenMP threads spin when the
    cores are oversubscribed (a parity test took 170 s beside another worker, 34 s on one thread)."""
    torch = sys.modules.get("torch")
    if torch is not None and os.environ.get("PYTEST_XDIST_WORKER") and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def check_grads(fn, args, **kw):
    """jax.test_util.check_grads in float64: float32 finite differences are too noisy to tell a
    wrong gradient from rounding, and float64 gets JAX's much tighter default tolerances."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.test_util import check_grads as _check_grads
    with jax.enable_x64(True):
        _check_grads(fn, tuple(jnp.asarray(np.asarray(a), jnp.float64) for a in args), **kw)
