"""WGAN-GP (Gulrajani et al. 2017): the WGAN critic loss plus lambda * (||grad D(x_hat)|| - 1)^2
at random interpolates x_hat between real and fake images, and ProGAN's drift term
epsilon * D(x)^2 on real scores (Karras et al. 2018) that keeps critic values near zero.
No weight clipping. n_critic = 5 critic updates per G update, scheduled as in WGAN (critic phase
every step, G phase every n_critic-th step).

Optimiser: Adam(1e-4, b1=0.0, b2=0.9), the paper's Algorithm 1 defaults (its released code
used b1=0.5 for some experiments; set beta1 to choose).

The critic must not use BatchNorm: the penalty is per sample, and batch statistics couple the
samples. The default critic has no normalisation (the paper's DCGAN-style critics);
d_norm='layer' gives the layer-normalised critic the paper recommends as a drop-in.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from gigajax.losses import drift_penalty, gradient_penalty, wgan_d
from gigajax.train.recipe import DataSpec, Phase
from gigajax.train.recipes.wgan import WGANRecipe


class WGANGPRecipe(WGANRecipe):
    """z_dim, ngf, ndf, g_norm, conditional: as DCGANRecipe. d_norm: 'none' or 'layer'.
    lr, beta1, beta2: Adam for both networks. n_critic: critic updates per G update.
    gp_lambda: gradient-penalty weight (10). drift_epsilon: drift weight (0.001; 0 turns it off)."""

    def __init__(self, spec: DataSpec, z_dim: int = 100, ngf: int = 64, ndf: int = 64, g_norm: str = "batch",
                 d_norm: str = "none", lr: float = 1e-4, beta1: float = 0.0, beta2: float = 0.9,
                 n_critic: int = 5, gp_lambda: float = 10.0, drift_epsilon: float = 0.001,
                 conditional: bool = False):
        if d_norm == "batch":
            raise ValueError(f"{type(self).__name__}: d_norm='batch' is not allowed with a gradient penalty "
                             "(batch statistics couple the samples); use 'layer' or 'none'")
        super().__init__(spec, z_dim=z_dim, ngf=ngf, ndf=ndf, g_norm=g_norm, d_norm=d_norm, lr=lr,
                         n_critic=n_critic, conditional=conditional)
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.gp_lambda, self.drift_epsilon = float(gp_lambda), float(drift_epsilon)
        self.phases = (Phase("Dmain", "D", self.d_loss, interval=1),
                       Phase("Gmain", "G", self.g_loss, interval=self.n_critic))

    def optimizers(self) -> dict:
        return {m: optax.adam(self.lr, b1=self.beta1, b2=self.beta2) for m in ("G", "D")}

    def init(self, key, batch):
        return super(WGANRecipe, self).init(key, batch)   # no clipping box

    def d_loss(self, params, colls, aux, batch, key):
        key, kgp = jax.random.split(key)
        real, fake, c, real_out, fake_out, colls = self.d_scores(params, colls, batch, key)
        d_fn = lambda x: self.D.apply({"params": params["D"], **colls["D"]}, x, c, train=True)
        gp = gradient_penalty(d_fn, real, fake, kgp)
        drift = drift_penalty(real_out)
        wass = wgan_d(real_out, fake_out)
        loss = jnp.mean(wass + self.gp_lambda * gp + self.drift_epsilon * drift)
        metrics = {"loss": loss, "real_score": jnp.mean(real_out), "fake_score": jnp.mean(fake_out),
                   "wdist": -jnp.mean(wass), "gp": jnp.mean(gp), "drift": jnp.mean(drift)}
        return loss, (metrics, colls, aux)
