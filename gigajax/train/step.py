"""One training step: every due phase, the non-finite guard, and the G_ema update.

`build_train_step` writes the step as one pure function (state, batch, due) -> (state, metrics).
`due` (one bool per phase, from `step % interval == 0`) is static: the host picks it. We do not
select phases with `lax.cond` inside one program: XLA:CPU leaves convolution weight gradients
inside a cond branch unoptimised, measured 100x slower for a 4x4 stride-2 conv and 3-4x slower
for whole WGAN steps.

`jit_train_step` compiles each phase as its own program (plus a small one that finishes the
step) and runs the due ones in order. One program per *set* of due phases would compile every
phase once per set it appears in: StyleGAN2's sets {G, D}, {G, Gpl, D} and {G, Gpl, D, R1}
took 33 + 50 + 73 s to compile on the 2-core CPU, the four phases alone 83 s. Both forms compute
the same step (same keys, same order); `fuse_phases=True` selects the one-program form.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gigajax.train.state import TrainState

PyTree = Any

# A phase loss may put this key in its metrics: a true value drops the phase's update (not
# counted as a non-finite skip).
SKIP_UPDATE = "skip_update"


def to_model_batch(batch: dict) -> dict:
    """uint8 images [B, H, W, C] -> float32 in [-1, 1]; labels pass through as float32."""
    image = batch["image"]
    if image.dtype == jnp.uint8:
        image = image.astype(jnp.float32) / 127.5 - 1.0
    return {"image": image, "label": batch["label"].astype(jnp.float32)}


def all_finite(*trees) -> jax.Array:
    leaves = [x for t in trees for x in jax.tree_util.tree_leaves(t)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    if not leaves:
        return jnp.bool_(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def ema_beta(nimg, batch_size: int, ema_kimg: float, ema_rampup: float) -> jax.Array:
    """G_ema decay per step for a half-life of ema_kimg thousand images, the half-life capped at
    cur_nimg * ema_rampup early in training (StyleGAN2-ADA). ema_kimg == 0 turns EMA off."""
    if ema_kimg <= 0:
        return jnp.float32(0.0)
    ema_nimg = jnp.float32(ema_kimg * 1000.0)
    if ema_rampup > 0:
        ema_nimg = jnp.minimum(ema_nimg, nimg.astype(jnp.float32) * ema_rampup)
    return jnp.float32(0.5) ** (batch_size / jnp.maximum(ema_nimg, 1e-8))


def _select(pred, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)


def _phase_update(phase, optimizer, carry, batch, key):
    """Run one phase. carry = (params, colls, aux, opt). Returns (carry, metrics, finite)."""
    params, colls, aux, opt = carry
    m = phase.module

    def objective(p):
        return phase.loss({**params, m: p}, colls, aux, batch, key)

    (loss, (metrics, new_colls, new_aux)), grads = jax.value_and_grad(objective, has_aux=True)(params[m])
    metrics = dict(metrics)
    # A phase can veto its own update (`SKIP_UPDATE` in its metrics), as the official loops skip a
    # phase that produced no gradient (e.g. StyleGAN-XL's path length before 1 Mimg).
    apply = jnp.logical_not(jnp.asarray(metrics.pop(SKIP_UPDATE, False), jnp.bool_))
    updates, new_opt_m = optimizer.update(grads, opt[m], params[m])
    new_p = optax.apply_updates(params[m], updates)
    if phase.post_update is not None:
        new_p = phase.post_update(new_p)
    finite = jnp.isfinite(loss) & all_finite(grads)
    keep = finite & apply
    # A non-finite loss or gradient (or a veto) leaves every part of the state as it was.
    new_carry = ({**params, m: _select(keep, new_p, params[m])},
                 _select(keep, new_colls, colls),
                 _select(keep, new_aux, aux),
                 {**opt, m: _select(keep, new_opt_m, opt[m])})
    metrics = {"loss": loss, **metrics}
    metrics = {k: jnp.asarray(v, jnp.float32).reshape(()) for k, v in metrics.items()}
    return new_carry, metrics, finite


def due_phases(phases, step: int) -> tuple[bool, ...]:
    """Which phases run at optimisation step `step` (a host int): step % interval == 0."""
    return tuple(int(step) % int(p.interval) == 0 for p in phases)


def _step_keys(rng):
    """(next state.rng key, this step's key); phase i uses fold_in(step key, i)."""
    return jax.random.split(jax.random.wrap_key_data(rng))


def _finish(state: TrainState, carry, phase_out, phases, *, batch_size, ema_kimg, ema_rampup):
    """Counters, G_ema and the metric dict after the phases. phase_out[i] = (metrics, ran, finite)."""
    params, colls, aux, opt = carry
    key, _ = _step_keys(state.rng)
    out = {}
    any_skip = jnp.bool_(False)
    for phase, (metrics, ran, finite) in zip(phases, phase_out):
        skipped = ran & ~finite
        any_skip = any_skip | skipped
        out.update({f"{phase.name}/{k}": v for k, v in metrics.items()})
        out[f"{phase.name}/ran"] = ran.astype(jnp.float32)
        out[f"{phase.name}/skipped"] = skipped.astype(jnp.float32)

    beta = ema_beta(state.nimg, batch_size, ema_kimg, ema_rampup)
    ema_params = jax.tree_util.tree_map(lambda e, p: p + (e - p) * beta, state.ema["params"], params["G"])
    ema = {**colls["G"], "params": ema_params}   # buffers (batch_stats, ...) are copied, as in the official code
    out["ema_beta"] = beta

    nonfinite = {"total": state.nonfinite["total"] + sum(out[f"{p.name}/skipped"] for p in phases).astype(jnp.int32),
                 "streak": jnp.where(any_skip, state.nonfinite["streak"] + 1, 0).astype(jnp.int32)}
    out["nonfinite/streak"] = nonfinite["streak"].astype(jnp.float32)
    out["nonfinite/total"] = nonfinite["total"].astype(jnp.float32)
    new_state = state.replace(step=state.step + 1, nimg=state.nimg + batch_size, params=params, colls=colls,
                              ema=ema, opt=opt, rng=jax.random.key_data(key), aux=aux, nonfinite=nonfinite)
    return new_state, out


def _run_phase(phases, optimizers, i, carry, batch, rng):
    """Phase i on the model batch; the key is derived from state.rng exactly as the fused step does."""
    _, step_key = _step_keys(rng)
    phase = phases[i]
    return _phase_update(phase, optimizers[phase.module], carry, batch, jax.random.fold_in(step_key, i))


def _check_phases(recipe):
    phases = tuple(recipe.phases)
    if not phases:
        raise ValueError(f"{type(recipe).__name__}.phases is empty: nothing to train")
    return phases


def build_train_step(recipe, optimizers: dict, *, batch_size: int, ema_kimg: float, ema_rampup: float):
    """Return step(state, batch, due) -> (state, metrics) for `recipe`, as one function. `batch`
    holds the global batch ('image' uint8 or float [B, H, W, C], 'label' [B, c_dim]); B must equal
    batch_size. `due` is a static tuple of bools, one per phase (see `due_phases`).

    Metrics (float32 scalars): '<phase>/<name>' for each phase's metrics (0 when not due),
    '<phase>/ran' (1 when the phase was due), '<phase>/skipped' (1 when its update was dropped
    as non-finite), 'nonfinite/streak', 'nonfinite/total' and 'ema_beta'."""
    phases = _check_phases(recipe)
    finish = functools.partial(_finish, phases=phases, batch_size=batch_size, ema_kimg=ema_kimg,
                               ema_rampup=ema_rampup)

    def step(state: TrainState, batch: dict, due: tuple):
        if len(due) != len(phases):
            raise ValueError(f"due has {len(due)} entries for {len(phases)} phases")
        batch = to_model_batch(batch)
        carry = (state.params, state.colls, state.aux, state.opt)
        phase_out = []
        for i in range(len(phases)):
            run = functools.partial(_run_phase, phases, optimizers, i, batch=batch, rng=state.rng)
            if due[i]:
                carry, metrics, finite = run(carry)
            else:   # same metric keys in every program, so logs line up; nothing is computed
                metrics = _zeros(jax.eval_shape(run, carry)[1])
                finite = jnp.bool_(True)
            phase_out.append((metrics, jnp.bool_(bool(due[i])), finite))
        return finish(state, carry, phase_out)

    return step


def _zeros(shapes):
    return {k: jnp.zeros(v.shape, v.dtype) for k, v in shapes.items()}


def jit_train_step(recipe, optimizers: dict, *, batch_size: int, ema_kimg: float, ema_rampup: float,
                   state_sharding, batch_sharding, donate: bool = True, fuse_phases: bool = False):
    """The sharded, jit-compiled step: call it as step(state, batch, step_index) with the host's
    step counter. Each phase compiles once, on first use (module doc); `fuse_phases=True`
    compiles one program per set of due phases instead."""
    phases = _check_phases(recipe)
    if fuse_phases:
        fn = build_train_step(recipe, optimizers, batch_size=batch_size, ema_kimg=ema_kimg, ema_rampup=ema_rampup)
        jitted = jax.jit(fn, static_argnums=2, in_shardings=(state_sharding, batch_sharding),
                         out_shardings=(state_sharding, state_sharding), donate_argnums=(0,) if donate else ())
        return lambda state, batch, step_index: jitted(state, batch, due_phases(phases, step_index))

    donated = (0,) if donate else ()
    run_phase = [jax.jit(lambda carry, batch, rng, i=i: _run_phase(phases, optimizers, i, carry, to_model_batch(batch), rng),
                         in_shardings=(state_sharding, batch_sharding, state_sharding),
                         out_shardings=state_sharding, donate_argnums=donated)
                 for i in range(len(phases))]
    finish = jax.jit(functools.partial(_finish, phases=phases, batch_size=batch_size, ema_kimg=ema_kimg,
                                       ema_rampup=ema_rampup),
                     out_shardings=(state_sharding, state_sharding), donate_argnums=(0,) if donate else ())
    idle = {}   # phase index -> (zero metrics, ran, finite) for steps where it is not due
    # 'ran' flags as committed device arrays whether or not the phase ran: a host constant on one
    # side would make each set of due phases a different signature of `finish` (a recompile each).
    true = jax.device_put(jnp.bool_(True), state_sharding)

    def step(state: TrainState, batch: dict, step_index: int):
        carry = (state.params, state.colls, state.aux, state.opt)
        # The finish program reads these, and the phase programs may donate the carry's buffers.
        rest = state.replace(params=None, colls=None, aux=None, opt=None)
        phase_out = []
        for i, due in enumerate(due_phases(phases, step_index)):
            if due:
                carry, metrics, finite = run_phase[i](carry, batch, state.rng)
                phase_out.append((metrics, true, finite))
            else:
                if i not in idle:
                    shapes = jax.eval_shape(run_phase[i], carry, batch, state.rng)[1]
                    idle[i] = (jax.device_put(_zeros(shapes), state_sharding),
                               jax.device_put(jnp.bool_(False), state_sharding),
                               true)
                phase_out.append(idle[i])
        return finish(rest, carry, phase_out)

    return step
