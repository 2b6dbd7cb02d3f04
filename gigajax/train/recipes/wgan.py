"""WGAN (Arjovsky et al. 2017): the DCGAN networks with a linear critic output, the Wasserstein
losses, RMSprop(5e-5), n_critic = 5 critic updates per G update and weight clipping to [-c, c].

Schedule: every training step runs one critic update on a fresh real batch (phase 'Dmain',
interval 1, then clipping as its post_update); G updates on every n_critic-th step (phase 'Gmain',
interval n_critic, after the critic). So kimg counts the real images the critic saw, and G makes
one update per n_critic of them. The paper's extra warm-up (100 critic iterations for the first
25 G iterations and every 500th) is not used.

The critic keeps BatchNorm by default (d_norm='batch'), as the paper's DCGAN critic did; clipping
applies to every critic parameter, BatchNorm's scale and offset included, as in the official
code. d_norm='none' or 'layer' gives a critic without batch dependence.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import optax

from gigajax.losses import clip_weights, wgan_d, wgan_g
from gigajax.train.recipe import DataSpec, Phase
from gigajax.train.recipes.dcgan import DCGANRecipe


class WGANRecipe(DCGANRecipe):
    """z_dim, ngf, ndf, g_norm, d_norm, conditional: as DCGANRecipe.
    lr: RMSprop step size for both networks (PyTorch's RMSprop: decay 0.99, eps 1e-8 outside the sqrt).
    n_critic: critic updates per G update. clip: weight-clipping bound c."""

    def __init__(self, spec: DataSpec, z_dim: int = 100, ngf: int = 64, ndf: int = 64, g_norm: str = "batch",
                 d_norm: str = "batch", lr: float = 5e-5, n_critic: int = 5, clip: float = 0.01,
                 conditional: bool = False):
        super().__init__(spec, z_dim=z_dim, ngf=ngf, ndf=ndf, g_norm=g_norm, d_norm=d_norm, lr=lr,
                         conditional=conditional)
        if float(clip) <= 0:
            raise ValueError(f"{type(self).__name__}: clip must be > 0, got {clip!r}")
        self.n_critic, self.clip = int(n_critic), float(clip)
        self.phases = (Phase("Dmain", "D", self.d_loss, interval=1,
                             post_update=functools.partial(clip_weights, clip_value=self.clip)),
                       Phase("Gmain", "G", self.g_loss, interval=self.n_critic))

    def optimizers(self) -> dict:
        return {m: optax.rmsprop(self.lr, decay=0.99, eps=1e-8, eps_in_sqrt=False) for m in ("G", "D")}

    def init(self, key, batch):
        variables = super().init(key, batch)
        # Start inside the clipping box, as the official code does after its first clamp.
        variables["D"]["params"] = clip_weights(variables["D"]["params"], self.clip)
        return variables

    def d_loss(self, params, colls, aux, batch, key):
        _, _, _, real_out, fake_out, colls = self.d_scores(params, colls, batch, key)
        loss = jnp.mean(wgan_d(real_out, fake_out))
        metrics = {"loss": loss, "real_score": jnp.mean(real_out), "fake_score": jnp.mean(fake_out),
                   "wdist": jnp.mean(real_out) - jnp.mean(fake_out)}
        return loss, (metrics, colls, aux)

    def g_loss(self, params, colls, aux, batch, key):
        fake_out, colls = self.g_scores(params, colls, batch, key)
        loss = jnp.mean(wgan_g(fake_out))
        return loss, ({"loss": loss, "fake_score": jnp.mean(fake_out)}, colls, aux)
