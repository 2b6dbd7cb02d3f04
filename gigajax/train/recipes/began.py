"""BEGAN (Berthelot et al. 2017) as a `GANRecipe`: an autoencoder discriminator, and a
proportional controller k_t that keeps E[L(G(z))] = gamma E[L(x)] (the boundary equilibrium).

    L(v)     = mean |v - D(v)|                      (per sample, eta = 1: L1)
    L_D      = L(x) - k_t L(G(z_D))
    L_G      = L(G(z_G))
    k_{t+1}  = clip(k_t + lambda_k (gamma L(x) - L(G(z_D))), 0, 1)
    M_global = L(x) + |gamma L(x) - L(G(z_D))|

with the batch means of L in the last three lines. k_t lives in the recipe's aux state
({'k_t': float32}); it starts at 0.

Order within a step: the paper updates D and G simultaneously from one forward pass. The trainer
runs phases one after the other, so this recipe runs the D phase first: it computes L(x) and
L(G(z_D)) with the step's starting parameters, updates D, and updates k_t from those same
values (exactly the paper's k update). The G phase then takes its gradient through the
already-updated D, as alternating GAN trainers do. G's loss does not involve k_t, so the aux
order does not matter for it.

z ~ U(-1, 1)^z_dim as in the paper (`grid_inputs` draws the same). G's last conv has no
activation (paper); `generate` clips its images to [-1, 1]. Recipe defaults are the paper's:
gamma 0.5, lambda_k 0.001, Adam lr 1e-4 with betas (0.5, 0.999) for both networks (the paper's
halving of the learning rate when M stalls is not implemented: the rate stays constant).

`g_out_bias` (default 0, the paper's initialisation) is the initial bias of G's last conv. On
MNIST (mean pixel -0.8 in [-1, 1]) a G that starts at mid-gray got stuck there: with k_t = 0
its gradient is dominated by the path through D's Jacobian (3-5x the direct term, measured),
so it learned gray textures that D maps to gray instead of moving to D's data manifold, and
L(G(z)) stayed above gamma L(x) so k_t never left 0. Starting G at the data's background
(-0.8) removes that: G first matches the blank canvas, k_t rises, and strokes appear.

Metrics: Dmain/'L_real', 'L_fake', 'k_t' (the value after this step's update), 'M';
Gmain/'L_fake'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from gigajax.models import began as net
from gigajax.train.recipe import DataSpec, GANRecipe, Phase


def reconstruction_loss(v: jax.Array, recon: jax.Array, eta: int = 1) -> jax.Array:
    """Per-sample L(v) = mean |v - D(v)|^eta over pixels and channels, [B]."""
    d = jnp.abs(v - recon)
    if eta != 1:
        d = d ** eta
    return jnp.mean(d.reshape(d.shape[0], -1), axis=1)


def update_k(k_t, l_real, l_fake, gamma: float, lambda_k: float):
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) on batch-mean losses."""
    return jnp.clip(k_t + lambda_k * (gamma * l_real - l_fake), 0.0, 1.0)


def convergence_measure(l_real, l_fake, gamma: float):
    """M_global = L(x) + |gamma L(x) - L(G(z))|."""
    return l_real + jnp.abs(gamma * l_real - l_fake)


class BEGANRecipe(GANRecipe):
    """BEGAN. Every keyword is an `experiments/began.py` config.model key."""

    def __init__(self, spec: DataSpec, *, z_dim: int = 64, h_dim: int = 64, n: int = 32, base_resolution: int = 8,
                 convs_per_level: int = 2, g_out_bias: float = 0.0, gamma: float = 0.5, lambda_k: float = 0.001,
                 eta: int = 1, lr_g: float = 1e-4, lr_d: float = 1e-4, beta1: float = 0.5, beta2: float = 0.999):
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"BEGANRecipe: gamma must be in (0, 1], got {gamma}")
        if eta not in (1, 2):
            raise ValueError(f"BEGANRecipe: eta must be 1 (L1) or 2 (L2), got {eta}")
        self.spec = spec
        self.z_dim, self.c_dim = int(z_dim), 0
        self.gamma, self.lambda_k, self.eta = float(gamma), float(lambda_k), int(eta)
        self.lr_g, self.lr_d, self.beta1, self.beta2 = lr_g, lr_d, beta1, beta2
        self.G = net.Generator(resolution=spec.resolution, channels=spec.channels, n=n,
                               base_resolution=base_resolution, convs_per_level=convs_per_level,
                               out_bias_init=g_out_bias)
        self.D = net.Discriminator(resolution=spec.resolution, channels=spec.channels, n=n, h_dim=h_dim,
                                   base_resolution=base_resolution, convs_per_level=convs_per_level)
        self.phases = (Phase("Dmain", "D", self._d_loss), Phase("Gmain", "G", self._g_loss))

    def init(self, key, batch):
        kg, kd = jax.random.split(key)
        x = jnp.asarray(batch["image"])[:2].astype(jnp.float32)
        return {"G": self.G.init(kg, jnp.zeros((x.shape[0], self.z_dim), jnp.float32)),
                "D": self.D.init(kd, x)}

    def init_aux(self):
        return {"k_t": jnp.float32(0.0)}

    def optimizers(self):
        return {"G": optax.adam(self.lr_g, self.beta1, self.beta2),
                "D": optax.adam(self.lr_d, self.beta1, self.beta2)}

    def generate(self, g_variables, z, c, key):
        del c, key
        return jnp.clip(self.G.apply(g_variables, z), -1.0, 1.0)

    def grid_inputs(self, key, rows, cols):
        return self.sample_z(key, rows * cols), jnp.zeros((rows * cols, 0), jnp.float32)

    def sample_z(self, key, n):
        return jax.random.uniform(key, (n, self.z_dim), jnp.float32, -1.0, 1.0)

    def _d_loss(self, params, colls, aux, batch, key):
        real = batch["image"]
        b = real.shape[0]
        fake = jax.lax.stop_gradient(self.G.apply({"params": params["G"], **colls["G"]}, self.sample_z(key, b)))
        both = jnp.concatenate([real, fake], axis=0)   # D has no batch statistics: one call for both
        recon = self.D.apply({"params": params["D"], **colls["D"]}, both)
        l_all = reconstruction_loss(both, recon, self.eta)
        l_real, l_fake = jnp.mean(l_all[:b]), jnp.mean(l_all[b:])
        k_t = aux["k_t"]
        loss = l_real - k_t * l_fake
        lr_, lf_ = jax.lax.stop_gradient(l_real), jax.lax.stop_gradient(l_fake)
        k_new = update_k(k_t, lr_, lf_, self.gamma, self.lambda_k).astype(jnp.float32)
        metrics = {"L_real": l_real, "L_fake": l_fake, "k_t": k_new, "M": convergence_measure(lr_, lf_, self.gamma)}
        return loss, (metrics, colls, {**aux, "k_t": k_new})

    def _g_loss(self, params, colls, aux, batch, key):
        fake = self.G.apply({"params": params["G"], **colls["G"]}, self.sample_z(key, batch["image"].shape[0]))
        recon = self.D.apply({"params": params["D"], **colls["D"]}, fake)
        l_fake = jnp.mean(reconstruction_loss(fake, recon, self.eta))
        return l_fake, ({"L_fake": l_fake}, colls, aux)
