"""Fused bias + activation + gain + clamp (NVlabs' `bias_act`), written so that XLA fuses it.

Defaults follow the official table: the gain of each activation keeps the signal magnitude of
a unit-variance input (sqrt(2) for the rectifiers and swish, 1 for the rest).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gigajax.ops._args import fail


@dataclasses.dataclass(frozen=True)
class Activation:
    func: callable
    def_alpha: float
    def_gain: float


ACTIVATIONS = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0),
    "relu": Activation(lambda x, a: jax.nn.relu(x), 0.0, float(np.sqrt(2))),
    "lrelu": Activation(lambda x, a: jnp.where(x >= 0, x, x * a), 0.2, float(np.sqrt(2))),
    "tanh": Activation(lambda x, a: jnp.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, a: jax.nn.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, a: jax.nn.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, a: jax.nn.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, a: jax.nn.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, a: jax.nn.sigmoid(x) * x, 0.0, float(np.sqrt(2))),
}


def bias_act(x, b=None, dim=-1, act="linear", alpha=None, gain=None, clamp=None):
    """y = clamp(act(x + b, alpha) * gain, -clamp, clamp).

    Args:
      x: activations of any shape.
      b: optional bias `[x.shape[dim]]`.
      dim: axis of x that `b` runs along; -1 (channels of NHWC) by default.
      act: one of `ACTIVATIONS`.
      alpha: shape parameter (lrelu slope); None = the activation's default.
      gain: output scale; None = the activation's default gain.
      clamp: clamp the output to [-clamp, clamp]; None disables.

    Returns:
      same shape and dtype as x.
    """
    if act not in ACTIVATIONS:
        fail("act", act, f"one of {sorted(ACTIVATIONS)}")
    spec = ACTIVATIONS[act]
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    if clamp is not None and clamp < 0:
        fail("clamp", clamp, "None or a value >= 0")
    if b is not None:
        ndim = np.ndim(x)
        if not -ndim <= dim < ndim:
            fail("dim", dim, f"an axis of x (rank {ndim})")
        if np.ndim(b) != 1 or np.shape(b)[0] != np.shape(x)[dim]:
            fail("b.shape", tuple(np.shape(b)), f"[{np.shape(x)[dim]}] to match x.shape[{dim}] of x.shape {tuple(np.shape(x))}")
        shape = [1] * ndim
        shape[dim] = -1
        x = x + jnp.reshape(b, shape).astype(x.dtype)
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = jnp.clip(x, -clamp, clamp)
    return x
