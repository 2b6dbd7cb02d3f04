"""The original GAN (Goodfellow et al. 2014): MLP G and D, logistic D loss, non-saturating or
minimax G loss, one D step then one G step per training step.

`VanillaGANRecipe` is also the base of the other classic recipes (cgan, dcgan, wgan, wgan_gp):
it owns the plumbing that applies a network with its non-param collections (BatchNorm's
'batch_stats') and returns the updated collections, so subclasses only choose networks, losses
and optimizers.

Optimiser: Adam(2e-4, b1=0.5), as in DCGAN; the GAN paper used SGD with momentum, which needs
much longer on a CPU budget.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import optax

from gigajax.losses import logistic_d, minimax_g, nonsaturating_g
from gigajax.train.recipe import DataSpec, GANRecipe, Phase

G_LOSSES = {"nonsaturating": nonsaturating_g, "minimax": minimax_g}


class VanillaGANRecipe(GANRecipe):
    """MLP GAN. Unconditional unless `conditional=True` (then it is the cGAN; see CGANRecipe).

    z_dim:     latent size (z ~ N(0, I)).
    g_hidden:  G's hidden widths; d_hidden: D's hidden widths; d_dropout: dropout after D's layers.
    g_loss:    'nonsaturating' (-log D(G(z)), the default) or 'minimax' (log(1 - D(G(z)))).
    lr, beta1, beta2: Adam for both networks.
    """

    def __init__(self, spec: DataSpec, z_dim: int = 100, g_hidden=(256, 512, 1024), d_hidden=(1024, 512, 256),
                 d_dropout: float = 0.0, g_loss: str = "nonsaturating", lr: float = 2e-4, beta1: float = 0.5,
                 beta2: float = 0.999, conditional: bool = False):
        if g_loss not in G_LOSSES:
            raise ValueError(f"{type(self).__name__}: g_loss must be one of {sorted(G_LOSSES)}, got {g_loss!r}")
        self.g_hidden, self.d_hidden, self.d_dropout = tuple(g_hidden), tuple(d_hidden), float(d_dropout)
        self._setup(spec, z_dim, conditional)
        self.g_loss_name = g_loss
        self.lr, self.beta1, self.beta2 = float(lr), float(beta1), float(beta2)
        self.phases = (Phase("Dmain", "D", self.d_loss), Phase("Gmain", "G", self.g_loss))

    # --- construction -----------------------------------------------------------------------

    def _setup(self, spec: DataSpec, z_dim: int, conditional: bool):
        if conditional and not spec.c_dim:
            raise ValueError(f"{type(self).__name__}: a conditional model needs labelled data "
                             f"(config.use_labels=True); the data spec has c_dim={spec.c_dim}")
        self.spec = spec
        self.z_dim = int(z_dim)
        self.c_dim = int(spec.c_dim) if conditional else 0
        self.G, self.D = self.build_networks()

    def build_networks(self):
        from gigajax.models.gan import MLPDiscriminator, MLPGenerator
        s = self.spec
        G = MLPGenerator(z_dim=self.z_dim, c_dim=self.c_dim, img_resolution=s.resolution,
                         img_channels=s.channels, hidden=self.g_hidden)
        D = MLPDiscriminator(c_dim=self.c_dim, img_resolution=s.resolution, img_channels=s.channels,
                             hidden=self.d_hidden, dropout=self.d_dropout)
        return G, D

    def init(self, key, batch: Mapping[str, jax.Array]) -> dict:
        image = jnp.asarray(batch["image"], jnp.float32)
        s = self.spec
        if image.ndim != 4 or image.shape[1:] != (s.resolution, s.resolution, s.channels):
            raise ValueError(f"{type(self).__name__}.init: batch['image'] must be [B, {s.resolution}, {s.resolution}, "
                             f"{s.channels}] to match the data spec, got {tuple(image.shape)}")
        n = image.shape[0]
        c = self._labels(batch, n)
        kg, kd, kdrop = jax.random.split(key, 3)
        g_vars = self.G.init({"params": kg}, jnp.zeros((n, self.z_dim), jnp.float32), c, train=False)
        d_vars = self.D.init({"params": kd, "dropout": kdrop}, image, c, train=False)
        return {"G": dict(g_vars), "D": dict(d_vars)}

    def optimizers(self) -> dict:
        return {m: optax.adam(self.lr, b1=self.beta1, b2=self.beta2) for m in ("G", "D")}

    def generate(self, g_variables, z, c, key):
        del key  # these generators have no per-sample noise inputs
        return self.G.apply(g_variables, z, self._c_or_none(c), train=False)

    # --- plumbing ---------------------------------------------------------------------------

    def _c_or_none(self, c):
        return c if self.c_dim else None

    def _labels(self, batch, n):
        """The batch's one-hot labels for a conditional recipe (validated), else None."""
        if not self.c_dim:
            return None
        c = batch.get("label")
        if c is None or c.shape != (n, self.c_dim):
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"{type(self).__name__}: batch['label'] must be one-hot [{n}, {self.c_dim}] "
                             f"(config.use_labels=True), got {got}")
        return jnp.asarray(c, jnp.float32)

    def _run(self, name, params, colls, x, c, key=None, train=True):
        """Apply network `name` ('G' or 'D') in train mode with its collections mutable.
        Returns (output, colls with that network's collections updated)."""
        net = self.G if name == "G" else self.D
        variables = {"params": params[name], **colls[name]}
        rngs = {"dropout": key} if key is not None else {}
        mutable = list(colls[name]) if train else False
        if not mutable:
            return net.apply(variables, x, c, train=train, rngs=rngs), colls
        out, updated = net.apply(variables, x, c, train=train, rngs=rngs, mutable=mutable)
        return out, {**colls, name: {**colls[name], **updated}}

    def _fakes(self, params, colls, batch, key):
        """G(z, c) in train mode for a batch of fresh z (labels: the real batch's)."""
        n = batch["image"].shape[0]
        c = self._labels(batch, n)
        z = jax.random.normal(key, (n, self.z_dim), jnp.float32)
        fake, colls = self._run("G", params, colls, z, c)
        return fake, c, colls

    # --- losses -----------------------------------------------------------------------------

    def d_scores(self, params, colls, batch, key):
        """D on a real batch and (separately, as DCGAN's BatchNorm needs) on a fake batch."""
        kz, kr, kf = jax.random.split(key, 3)
        fake, c, colls = self._fakes(params, colls, batch, kz)
        fake = jax.lax.stop_gradient(fake)
        real = jnp.asarray(batch["image"], jnp.float32)
        real_out, colls = self._run("D", params, colls, real, c, kr)
        fake_out, colls = self._run("D", params, colls, fake, c, kf)
        return real, fake, c, real_out, fake_out, colls

    def d_loss(self, params, colls, aux, batch, key):
        _, _, _, real_out, fake_out, colls = self.d_scores(params, colls, batch, key)
        loss = jnp.mean(logistic_d(real_out, fake_out))
        metrics = {"loss": loss, "real_score": jnp.mean(real_out), "fake_score": jnp.mean(fake_out)}
        return loss, (metrics, colls, aux)

    def g_scores(self, params, colls, batch, key):
        kz, kf = jax.random.split(key)
        fake, c, colls = self._fakes(params, colls, batch, kz)
        fake_out, colls = self._run("D", params, colls, fake, c, kf)
        return fake_out, colls

    def g_loss(self, params, colls, aux, batch, key):
        fake_out, colls = self.g_scores(params, colls, batch, key)
        loss = jnp.mean(G_LOSSES[self.g_loss_name](fake_out))
        return loss, ({"loss": loss, "fake_score": jnp.mean(fake_out)}, colls, aux)
