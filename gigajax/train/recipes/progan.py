"""ProGAN's training (Karras et al. 2018, official progressive_growing_of_gans): one recipe per
phase of the growth schedule, i.e. a static `level` that is either stable or fading in.

Per step: a D update (phase 'Dmain') then a G update ('Gmain'), each on fresh latents.
- Loss: WGAN-GP as the official D_wgangp_acgan: D(fake) - D(real) + lambda / target**2 *
  (||grad D(x_hat)|| - target)**2 + epsilon * D(real)**2, x_hat = lerp(real, fake, u), u ~ U[0, 1)
  per sample; G: -D(fake). Batch means.
- Fade-in: alpha = cur_nimg / (fade_kimg * 1000) clipped to [0, 1], on a clock in the aux state
  that starts at 0 with the phase. G and D blend their new block by alpha (gigajax.models.progan),
  and the reals are blended the same way: reals at the level's resolution (2x2 box averages of
  the dataset's images) lerped from their own nearest-upscaled half-resolution copy by alpha.
- alpha also lives in G's 'progan' collection, so G_ema (which copies G's buffers) and the
  sample grids draw with the current blend; `generate` nearest-upscales to the dataset's
  resolution, as the official G always outputs the full size.
- Adam(lr, 0, 0.99, eps 1e-8), fresh for every phase: the official `reset_opt_for_new_lod`
  resets both optimizers at the start of every fade-in and every stable phase. (TF's Adam adds
  eps to the uncorrected sqrt(v) and optax to the corrected one; at eps = 1e-8 that is invisible.)
- `init_path`: the previous phase's export {'G', 'D', 'G_ema'} at the fixed final shapes;
  without it the networks start from their initialisers (the first phase).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gigajax.losses import drift_penalty, gradient_penalty, wgan_d, wgan_g
from gigajax.models.progan import Discriminator, Generator, downscale2d, lerp, upscale2d
from gigajax.train.recipe import DataSpec, GANRecipe, Phase


def _same_tree(name, got, want):
    g = jax.tree_util.tree_map(lambda a: tuple(np.shape(a)), got)
    w = jax.tree_util.tree_map(lambda a: tuple(np.shape(a)), want)
    if g != w:
        raise ValueError(f"ProGAN init_path: {name} does not match this network (a different resolution or "
                         f"width?): got {g}, expected {w}")


class ProGANRecipe(GANRecipe):
    """level: the phase's level (resolution 4 * 2**level). fading: a fade-in phase (else stable).
    fade_kimg: the fade's length. latent_size, fmap_base, fmap_decay, fmap_max, mbstd_group_size:
    the networks (gigajax.models.progan). lr, beta1, beta2, eps: Adam for both. gp_lambda,
    wgan_target, drift_epsilon: the loss. init_path: see the module doc."""

    def __init__(self, spec: DataSpec, *, level: int, fading: bool = False, fade_kimg: float = 600.0,
                 latent_size: int = 512, fmap_base: int = 8192, fmap_decay: float = 1.0, fmap_max: int = 512,
                 mbstd_group_size: int = 4, lr: float = 0.001, beta1: float = 0.0, beta2: float = 0.99,
                 eps: float = 1e-8, gp_lambda: float = 10.0, wgan_target: float = 1.0,
                 drift_epsilon: float = 0.001, init_path: str | None = None):
        if spec.c_dim:
            raise ValueError("ProGANRecipe: unconditional only (set use_labels=False); the official AC-GAN "
                             "label head is not implemented")
        self.G = Generator(resolution=spec.resolution, num_channels=spec.channels, latent_size=latent_size,
                           fmap_base=fmap_base, fmap_decay=fmap_decay, fmap_max=fmap_max)
        self.D = Discriminator(resolution=spec.resolution, num_channels=spec.channels, fmap_base=fmap_base,
                               fmap_decay=fmap_decay, fmap_max=fmap_max, mbstd_group_size=mbstd_group_size)
        self._setup(spec, level, fading, fade_kimg, latent_size, 0, lr, beta1, beta2, eps, init_path)
        self.gp_lambda, self.wgan_target, self.drift_epsilon = float(gp_lambda), float(wgan_target), float(drift_epsilon)

    def _setup(self, spec, level, fading, fade_kimg, z_dim, c_dim, lr, beta1, beta2, eps, init_path):
        """What every progressive recipe shares, once self.G and self.D exist: the phase, Adam,
        the handover path and the phases (D then G)."""
        max_level = self.G.max_level
        if not 0 <= int(level) <= max_level:
            raise ValueError(f"{type(self).__name__}: level {level} is outside 0..{max_level} for resolution "
                             f"{spec.resolution}")
        if fading and int(level) == 0:
            raise ValueError(f"{type(self).__name__}: level 0 (4x4) has nothing to fade in from")
        if fading and float(fade_kimg) <= 0:
            raise ValueError(f"{type(self).__name__}: fade_kimg must be > 0, got {fade_kimg!r}")
        self.spec, self.level, self.fading, self.fade_kimg = spec, int(level), bool(fading), float(fade_kimg)
        self.z_dim, self.c_dim = int(z_dim), int(c_dim)
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), float(eps)
        self.init_path = init_path or None
        self.phases = (Phase("Dmain", "D", self.d_loss), Phase("Gmain", "G", self.g_loss))

    @property
    def resolution(self) -> int:
        return 4 * 2 ** self.level

    # --- state ----------------------------------------------------------------------------------

    def _init_networks(self, key, n):
        kg, kd = jax.random.split(key)
        g = self.G.init(kg, jnp.zeros((n, self.z_dim)), method=self.G.init_all)
        d = self.D.init(kd, jnp.zeros((n, self.spec.resolution, self.spec.resolution, self.spec.channels)),
                        method=self.D.init_all)
        return dict(g), dict(d)

    def init(self, key, batch):
        g, d = self._init_networks(key, batch["image"].shape[0])
        g = {**g, "progan": {"alpha": jnp.float32(0.0 if self.fading else 1.0)}}
        if self.init_path is None:
            return {"G": g, "D": d}
        from gigajax.train.export import load_variables
        prev, _ = load_variables(self.init_path)
        out = {}
        for name, fresh in (("G", g), ("D", d), ("G_ema", g)):
            if name not in prev or "params" not in prev[name]:
                raise ValueError(f"ProGAN init_path {self.init_path}: no {name}/params entry")
            _same_tree(name, prev[name]["params"], fresh["params"])
            # Parameters and buffers (StyleGAN's w_avg) carry over; the fade weight is this phase's.
            carried = {k: v for k, v in prev[name].items() if k != "progan" and k in fresh}
            out[name] = {**fresh, **jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), carried)}
        return out

    def init_aux(self):
        return {"cur_nimg": jnp.zeros((), jnp.float32)}

    def optimizers(self):
        return {m: optax.adam(self.lr, b1=self.beta1, b2=self.beta2, eps=self.eps) for m in ("G", "D")}

    # --- the fade ---------------------------------------------------------------------------------

    def alpha(self, cur_nimg):
        """The fade weight of the new block at cur_nimg images into this phase (1 when stable)."""
        if not self.fading:
            return jnp.float32(1.0)
        return jnp.clip(cur_nimg / (self.fade_kimg * 1e3), 0.0, 1.0).astype(jnp.float32)

    def reals(self, images, alpha):
        """Dataset images [N, R, R, C] -> the level's reals [N, r, r, C] (box averages), faded
        from their nearest-upscaled half-resolution copy by alpha during a fade-in."""
        x = downscale2d(images, self.spec.resolution // self.resolution) if self.resolution < self.spec.resolution else images
        if self.fading:
            x = lerp(upscale2d(downscale2d(x)), x, alpha)
        return x

    def _g(self, g_params, z, alpha):
        return self.G.apply({"params": g_params}, z, self.level, alpha if self.fading else None)

    def _d(self, d_params, img, alpha):
        return self.D.apply({"params": d_params}, img, self.level, alpha if self.fading else None)

    # --- phases -----------------------------------------------------------------------------------

    def d_loss(self, params, colls, aux, batch, key):
        kz, kgp = jax.random.split(key)
        alpha = self.alpha(aux["cur_nimg"])
        real = self.reals(batch["image"], alpha)
        fake = jax.lax.stop_gradient(self._g(params["G"], self.sample_z(kz, real.shape[0]), alpha))
        real_out, fake_out = self._d(params["D"], real, alpha), self._d(params["D"], fake, alpha)
        gp = gradient_penalty(lambda x: self._d(params["D"], x, alpha), real, fake, kgp, target=self.wgan_target)
        drift = drift_penalty(real_out)
        loss = jnp.mean(wgan_d(real_out, fake_out) + self.gp_lambda / self.wgan_target ** 2 * gp
                        + self.drift_epsilon * drift)
        metrics = {"real_score": jnp.mean(real_out), "fake_score": jnp.mean(fake_out),
                   "wdist": jnp.mean(real_out) - jnp.mean(fake_out), "gp": jnp.mean(gp), "drift": jnp.mean(drift),
                   "alpha": alpha}
        return loss, (metrics, colls, aux)

    def g_loss(self, params, colls, aux, batch, key):
        alpha = self.alpha(aux["cur_nimg"])
        n = batch["image"].shape[0]
        fake_out = self._d(params["D"], self._g(params["G"], self.sample_z(key, n), alpha), alpha)
        loss = jnp.mean(wgan_g(fake_out))
        # The clock moves after both phases used it; G's buffer carries the blend to G_ema and the grids.
        new_aux = {**aux, "cur_nimg": aux["cur_nimg"] + n}
        new_colls = {**colls, "G": {**colls["G"], "progan": {"alpha": self.alpha(new_aux["cur_nimg"])}}}
        return loss, ({"fake_score": jnp.mean(fake_out)}, new_colls, new_aux)

    # --- sampling ---------------------------------------------------------------------------------

    def generate(self, g_variables, z, c, key):
        return self._full_size(self._g(g_variables["params"], z, self.sampling_alpha(g_variables)))

    @staticmethod
    def sampling_alpha(g_variables):
        """The fade weight G (or G_ema) was last trained with, from its 'progan' buffer."""
        return g_variables.get("progan", {}).get("alpha", jnp.float32(1.0))

    def _full_size(self, img):
        """The level's images nearest-upscaled to the dataset's resolution (the official G's output)."""
        factor = self.spec.resolution // self.resolution
        return upscale2d(img, factor) if factor > 1 else img
