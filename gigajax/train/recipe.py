"""The contract between a GAN family and the generic trainer.

A model family describes itself as a `GANRecipe`: how to build its networks, which optimizer
each network gets, and the ordered list of training `Phase`s (G main, D main, lazy
regularisation, ...). The trainer owns everything else: state, sharding, EMA, checkpoints,
the non-finite guard, logging and sample grids. Recipes never import the trainer loop, so the
data flow stays one-way (data -> train -> outputs), and models never import `train` at all.

Shapes and conventions seen by a recipe:
- `batch['image']`: float32 [B, H, W, C] in [-1, 1] (the trainer converts from uint8).
- `batch['label']`: float32 [B, c_dim] one-hot (c_dim may be 0 for unconditional data).
- `variables`: {'G': {'params': ..., <other collections>}, 'D': {...}}.
- `aux`: a dict of small arrays the recipe owns (BEGAN's k_t, ADA's p, ...), checkpointed with
  the state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any

# loss(params, colls, aux, batch, key) -> (scalar loss, (metrics, new_colls, new_aux))
#   params: {'G': params, 'D': params}; the trainer differentiates only params[phase.module].
#   colls:  {'G': {collection: ...}, 'D': {...}} non-param collections (batch_stats, w_avg, ...).
#   metrics: flat dict name -> scalar, logged as '<phase.name>/<name>'. The key 'skip_update'
#            (gigajax.train.step.SKIP_UPDATE), if present, is a bool: true drops this phase's
#            update (params, optimizer state, colls and aux stay as they were).
LossFn = Callable[[PyTree, PyTree, PyTree, Mapping[str, jax.Array], jax.Array],
                  tuple[jax.Array, tuple[Mapping[str, jax.Array], PyTree, PyTree]]]


@dataclasses.dataclass(frozen=True)
class Phase:
    """One optimisation phase of a training step.

    name:        log prefix, e.g. 'Gmain', 'Dmain', 'Dreg'.
    module:      'G' or 'D': whose parameters (and optimizer state) this phase updates.
    loss:        see `LossFn`. Scale lazy regularisers by `interval` inside the loss.
    interval:    run on steps where `step % interval == 0` (lazy regularisation, WGAN n_critic).
    post_update: optional params -> params applied after the optimizer update (WGAN clipping).
    """
    name: str
    module: str
    loss: LossFn
    interval: int = 1
    post_update: Callable[[PyTree], PyTree] | None = None

    def __post_init__(self):
        if self.module not in ("G", "D"):
            raise ValueError(f"Phase {self.name!r}: module must be 'G' or 'D', got {self.module!r}")
        if int(self.interval) < 1:
            raise ValueError(f"Phase {self.name!r}: interval must be >= 1, got {self.interval!r}")


class GANRecipe:
    """Base class for a model family. Subclasses set the attributes and override the methods.

    Attributes:
      z_dim:  latent size drawn for sample grids.
      c_dim:  label size (0 = unconditional). Conditional grids put one class per row.
      phases: ordered tuple of `Phase`.
    """
    z_dim: int = 0
    c_dim: int = 0
    phases: tuple[Phase, ...] = ()

    def init(self, key: jax.Array, batch: Mapping[str, jax.Array]) -> dict:
        """Return {'G': variables, 'D': variables} for a batch shaped like the real ones, and
        optionally 'G_ema' (variables with G's tree) when continuing an earlier stage."""
        raise NotImplementedError

    def optimizers(self) -> dict:
        """Return {'G': optax.GradientTransformation, 'D': optax.GradientTransformation}."""
        raise NotImplementedError

    def init_aux(self) -> dict:
        """Recipe-owned state (float32/int32 arrays), e.g. {'k_t': 0.0} for BEGAN."""
        return {}

    def generate(self, g_variables: PyTree, z: jax.Array, c: jax.Array, key: jax.Array) -> jax.Array:
        """Images in [-1, 1], [N, H, W, C], from latents z [N, z_dim] and labels c [N, c_dim],
        in inference mode (running statistics, no dropout). `key` is for per-sample noise."""
        raise NotImplementedError

    def sample_z(self, key: jax.Array, n: int) -> jax.Array:
        """n latents [n, z_dim] from the prior G was trained with (N(0, I) unless a recipe says
        otherwise). Metrics draw generated samples from it."""
        return jax.random.normal(key, (n, self.z_dim), jnp.float32)

    # PPL in w space needs G split at its latent: mapping(g_variables, z, c) -> w and
    # synthesis(g_variables, w, c, key) -> images (see gigajax.metrics.ppl). None: no mapping network.
    mapping = None
    synthesis = None
    # The equivariance metrics (eqt50k_int, eqt50k_frac, eqr50k) need, besides mapping,
    # synthesis_t(g_variables, w, c, transform [3, 3]) -> images with StyleGAN3's input transform
    # (see gigajax.metrics.equivariance). None: the generator does not support them.
    synthesis_t = None

    def grid_inputs(self, key: jax.Array, rows: int, cols: int) -> tuple[jax.Array, jax.Array]:
        """Fixed inputs (z [rows*cols, z_dim], c [rows*cols, c_dim]) for the snapshot grid.
        Conditional recipes get one class per row (cycling when rows > c_dim)."""
        z = jax.random.normal(key, (rows * cols, self.z_dim), jnp.float32)
        if self.c_dim:
            cls = np.repeat(np.arange(rows) % self.c_dim, cols)
            c = jnp.asarray(np.eye(self.c_dim, dtype=np.float32)[cls])
        else:
            c = jnp.zeros((rows * cols, 0), jnp.float32)
        return z, c


def batch_labels(batch: Mapping[str, jax.Array], c_dim: int, owner: str) -> jax.Array:
    """The batch's one-hot labels as float32 [N, c_dim] ([N, 0] when c_dim is 0), or a ValueError
    naming `owner` when they are missing or have the wrong shape."""
    n = batch["image"].shape[0]
    if not c_dim:
        return jnp.zeros((n, 0), jnp.float32)
    c = batch.get("label")
    if c is None or tuple(c.shape) != (n, c_dim):
        raise ValueError(f"{owner}: batch['label'] must be one-hot [{n}, {c_dim}], got "
                         f"{None if c is None else tuple(c.shape)}")
    return jnp.asarray(c, jnp.float32)


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a recipe needs to know about the data to size its networks."""
    resolution: int   # H == W
    channels: int     # C
    c_dim: int        # number of classes when labels are used, else 0
