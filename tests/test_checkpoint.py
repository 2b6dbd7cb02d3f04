"""gigajax.train.checkpoint on the 8-device mesh: a replicated train state saves without compiling
anything and restores exactly, into the target's shardings."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gigajax.train.checkpoint import Checkpoints
from gigajax.train.state import TrainState


def _state(mesh, seed, n_arrays=40):
    rng = np.random.RandomState(seed)
    rep = NamedSharding(mesh, P())
    put = lambda x: jax.device_put(x, rep)       # noqa: E731
    # odd, distinct shapes: each would be a new program for a per-shape slice
    params = {f"w{i}": put(rng.randn(i + 1, 3 + i % 5).astype(np.float32)) for i in range(n_arrays)}
    return TrainState(step=put(np.int32(7)), nimg=put(np.int32(7 * 64)), params={"G": params, "D": {}},
                      colls={"G": {}, "D": {}}, ema={"params": params}, opt={"G": (), "D": ()},
                      rng=put(np.asarray([1, 2], np.uint32)), aux={"p": put(np.float32(0.25))},
                      nonfinite={"total": put(np.int32(0)), "streak": put(np.int32(0))})


def test_replicated_state_saves_without_compiling_and_restores_exactly(tmp_path):
    assert jax.device_count() == 8
    mesh = Mesh(np.array(jax.devices()), ("data",))
    state = _state(mesh, 0)
    compiles = []
    listener = lambda event, secs, **kw: compiles.append(event) if "backend_compile" in event else None  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        ckpt = Checkpoints(tmp_path)
        ckpt.save(state, {"kimg": 0.448}, wait=True)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    # Orbax's default on CPU/TPU cuts each replicated array into per-replica slices with eager
    # lax.slice calls, one XLA compile per shape (seconds per save on 8 devices).
    assert compiles == []
    restored, meta = ckpt.restore(jax.tree.map(jnp.zeros_like, _state(mesh, 1)))
    ckpt.close()
    assert meta == {"kimg": 0.448}
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        assert a.dtype == b.dtype and a.sharding.is_equivalent_to(b.sharding, a.ndim)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
