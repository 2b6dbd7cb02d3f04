"""The train state: everything a bitwise-exact resume needs, as one pytree of arrays."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

PyTree = Any


@flax.struct.dataclass
class TrainState:
    """step:      int32 [], optimisation steps taken (one global batch each).
    nimg:      int32 [], real images shown to D (kimg = nimg / 1000). int32 holds 2.1e9 images.
    params:    {'G': params, 'D': params}.
    colls:     {'G': {collection: ...}, 'D': {...}} non-param variables (batch_stats, w_avg, ...).
    ema:       G_ema's full variables ({'params': ..., <G's other collections>}).
    opt:       {'G': optax state, 'D': optax state}.
    rng:       uint32 [2] raw threefry key data; split once per step.
    aux:       recipe-owned arrays (BEGAN k_t, ADA p, ...).
    nonfinite: {'total': int32 [], 'streak': int32 []} skipped phase updates, and consecutive
               steps with a skip (the guard stops the run when streak reaches max_nonfinite).
    """
    step: jax.Array
    nimg: jax.Array
    params: PyTree
    colls: PyTree
    ema: PyTree
    opt: PyTree
    rng: jax.Array
    aux: PyTree
    nonfinite: PyTree


def split_variables(variables: dict) -> tuple[PyTree, PyTree]:
    """{'params': p, 'batch_stats': s, ...} -> (p, {'batch_stats': s, ...})."""
    variables = dict(variables)
    params = variables.pop("params", {})
    return params, variables


def create_state(recipe, key: jax.Array, sample_batch, optimizers: dict) -> TrainState:
    """Initialise networks, optimizers and counters. `key` is a typed PRNG key; it is split into
    the init key and the state's running key, so init and training noise never share a stream.
    recipe.init returns {'G': variables, 'D': variables} and optionally 'G_ema' (G_ema's
    variables, same tree as G's; default: a copy of G's)."""
    init_key, run_key = jax.random.split(key)
    variables = recipe.init(init_key, sample_batch)
    missing = {"G", "D"} - set(variables)
    if missing:
        raise ValueError(f"{type(recipe).__name__}.init must return {{'G': ..., 'D': ...}}; missing {sorted(missing)}")
    params, colls = {}, {}
    for name in ("G", "D"):
        params[name], colls[name] = split_variables(variables[name])
    # A copy, not an alias: the train step donates the state, and one buffer cannot be donated twice.
    # A recipe that continues an earlier run (a progressive stage) may hand over its G_ema too.
    ema = variables.get("G_ema", {"params": params["G"], **colls["G"]})
    ema = jax.tree_util.tree_map(jnp.copy, ema)
    opt = {name: optimizers[name].init(params[name]) for name in ("G", "D")}
    aux = jax.tree_util.tree_map(jnp.asarray, recipe.init_aux())
    zero = jnp.zeros((), jnp.int32)
    return TrainState(step=zero, nimg=zero, params=params, colls=colls, ema=ema, opt=opt,
                      rng=jax.random.key_data(run_key), aux=aux,
                      nonfinite={"total": zero, "streak": zero})
