"""StyleGAN3 (Karras et al. 2021) training, as NVlabs' stylegan3 `train.py --cfg=stylegan3-t|r`
configures `training/loss.py:StyleGAN2Loss`.

It is StyleGAN2's recipe (the StyleGAN2 discriminator, non-saturating loss, lazy R1, Adam with
the lazy-regularisation compensation, G_ema, ADA) with StyleGAN3's generator and these changes:
  - no path-length regularisation and no style mixing;
  - G's synthesis also runs with update_emas=True in Dmain, which is where every layer's
    `magnitude_ema` (the input-gain normaliser) tracks its input's mean square;
  - magnitude_ema_beta = 0.5 ** (batch / 20k): a half-life of 20 kimg whatever the batch;
  - config R: 1x1 convs, radial down filters, doubled channels, and a Gaussian blur of every
    image D sees (before augmentation) whose sigma fades from blur_init_sigma to 0 over the
    first blur_fade_kimg (batch * 200 / 32). The blur hides G's early high-frequency artefacts
    from D, which R (no 3x3 convs to smooth them) is prone to.
The blur's clock is the recipe's own count of images, kept in the aux state: every phase of a
step sees the count at the start of that step, as in the official loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from gigajax import ops
from gigajax.losses import logistic_d, nonsaturating_g
from gigajax.train.recipe import DataSpec
from gigajax.train.recipes.stylegan2 import StyleGAN2Recipe

CONFIGS = ("stylegan3-t", "stylegan3-r")


def blur_kernel(sigma, max_radius: int):
    """Normalised 1-D Gaussian `[2 * max_radius + 1]` in the official form: taps
    exp2(-(x / sigma)^2) for |x| <= floor(3 sigma), zero beyond. `sigma` may be traced."""
    x = jnp.arange(-max_radius, max_radius + 1, dtype=jnp.float32)
    radius = jnp.floor(sigma * 3)
    safe = jnp.maximum(sigma, 1e-8)
    taps = jnp.where(jnp.abs(x) <= radius, jnp.exp2(-jnp.square(x / safe)), 0.0)
    return taps / jnp.sum(taps)


def blur_images(img, sigma, max_radius: int):
    """img `[N, H, W, C]` filtered with the separable `blur_kernel(sigma)`, same size (zero padding),
    or returned as is when floor(3 sigma) == 0 (the official code skips the filter then)."""
    def blur(x):
        f = blur_kernel(sigma, max_radius)
        c = x.shape[-1]
        pad = (max_radius, max_radius)
        x = ops.depthwise_conv2d(x, jnp.tile(f[:, None, None], (1, 1, c)), 1, (pad, (0, 0)))
        return ops.depthwise_conv2d(x, jnp.tile(f[None, :, None], (1, 1, c)), 1, ((0, 0), pad))
    if max_radius == 0:
        return img
    return lax.cond(jnp.floor(sigma * 3) > 0, blur, lambda x: x, img)


class StyleGAN3Recipe(StyleGAN2Recipe):
    """Arguments as StyleGAN2Recipe (the names of NVlabs' train.py), plus:

    cfg:               'stylegan3-t' or 'stylegan3-r' (R: conv_kernel 1, radial filters, 2x cbase/cmax,
                       blur on by default).
    r1_gamma:          None = the heuristic of the official docs, 0.0002 * resolution^2 / batch.
    batch_size:        for the official batch-dependent defaults (magnitude_ema_beta, blur_fade_kimg).
    magnitude_ema_beta, blur_init_sigma, blur_fade_kimg: None = the official defaults for cfg/batch.
    num_layers, num_critical, margin_size: the synthesis schedule (official defaults 14, 2, 10).
    synthesis_kwargs:  any further SynthesisNetwork argument (first_cutoff, filter_size, ...).
    """

    def __init__(self, spec: DataSpec, cfg: str = "stylegan3-t", batch_size: int = 32, z_dim: int = 512,
                 w_dim: int = 512, map_layers: int = 2, cbase: int = 32768, cmax: int = 512,
                 d_architecture: str = "resnet", conv_clamp: float | None = 256, mbstd_group: int = 4,
                 r1_gamma: float | None = None, r1_interval: int = 16, glr: float = 0.0025, dlr: float = 0.002,
                 map_lr_mult: float = 0.01, conditional: bool = False, augment: str = "noaug",
                 augpipe: str = "bgc", aug_p: float = 0.0, ada_target: float = 0.6, ada_interval: int = 4,
                 ada_kimg: float = 100.0, magnitude_ema_beta: float | None = None,
                 blur_init_sigma: float | None = None, blur_fade_kimg: float | None = None,
                 num_layers: int = 14, num_critical: int = 2, margin_size: int = 10,
                 synthesis_kwargs: dict | None = None):
        if cfg not in CONFIGS:
            raise ValueError(f"StyleGAN3Recipe: cfg={cfg!r}; expected one of {CONFIGS}")
        if r1_gamma is None:
            r1_gamma = 0.0002 * spec.resolution ** 2 / batch_size
        super().__init__(spec, z_dim=z_dim, w_dim=w_dim, map_layers=map_layers, cbase=cbase, cmax=cmax,
                         d_architecture=d_architecture, conv_clamp=conv_clamp, mbstd_group=mbstd_group,
                         r1_gamma=r1_gamma, r1_interval=r1_interval, pl_weight=0.0, style_mixing_prob=0.0,
                         glr=glr, dlr=dlr, map_lr_mult=map_lr_mult, conditional=conditional, augment=augment,
                         augpipe=augpipe, aug_p=aug_p, ada_target=ada_target, ada_interval=ada_interval,
                         ada_kimg=ada_kimg)
        from gigajax.models.stylegan3 import Generator
        is_r = cfg == "stylegan3-r"
        self.cfg = cfg
        self.magnitude_ema_beta = 0.5 ** (batch_size / 20e3) if magnitude_ema_beta is None else magnitude_ema_beta
        self.blur_init_sigma = float((10 if is_r else 0) if blur_init_sigma is None else blur_init_sigma)
        self.blur_fade_kimg = float(batch_size * 200 / 32 if blur_fade_kimg is None else blur_fade_kimg)
        self.blur_radius = int(self.blur_init_sigma * 3) if self.blur_fade_kimg > 0 else 0
        kw = dict(channel_base=int(cbase) * (2 if is_r else 1), channel_max=int(cmax) * (2 if is_r else 1),
                  num_fp16_res=0, conv_clamp=conv_clamp, magnitude_ema_beta=self.magnitude_ema_beta,
                  num_layers=int(num_layers), num_critical=int(num_critical), margin_size=int(margin_size))
        if is_r:
            kw.update(conv_kernel=1, use_radial_filters=True)
        kw.update(synthesis_kwargs or {})
        # The StyleGAN2 parent built a StyleGAN2 G; StyleGAN3's replaces it (D stays StyleGAN2's).
        self.G = Generator.create(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, img_resolution=spec.resolution,
                                  img_channels=spec.channels,
                                  mapping_kwargs=dict(num_layers=int(map_layers), lr_multiplier=float(map_lr_mult)),
                                  **kw)
        self.num_ws = self.G.num_ws

    # --- contract -------------------------------------------------------------------------------

    def init(self, key, batch):
        n = min(int(batch["image"].shape[0]), 2)
        img = jnp.asarray(batch["image"][:n], jnp.float32)
        c = self._labels(batch)[:n]
        kg, kd = jax.random.split(key)
        g_vars = self.G.init({"params": kg}, jnp.zeros((n, self.z_dim), jnp.float32), c)
        d_vars = self.D.init({"params": kd}, img, c)
        return {"G": dict(g_vars), "D": dict(d_vars)}

    def init_aux(self):
        return {**super().init_aux(), "cur_nimg": jnp.zeros((), jnp.float32)}

    def generate(self, g_variables, z, c, key, truncation_psi=1.0, truncation_cutoff=None):
        del key
        return self.G.apply(g_variables, z, self._c(c, z.shape[0]), truncation_psi=truncation_psi,
                            truncation_cutoff=truncation_cutoff)

    def synthesis(self, g_variables, ws, c, key):
        del c, key
        return self.G.apply(g_variables, ws, method="synthesize")

    def synthesis_t(self, g_variables, ws, c, transform):
        """The equivariance metrics' synthesis: `transform` [3, 3] replaces the input transform."""
        del c
        return self.G.apply(g_variables, ws, method="synthesize", transform=transform)

    # --- G and D --------------------------------------------------------------------------------

    def _blur_sigma(self, nimg):
        if self.blur_radius == 0:
            return None
        return jnp.maximum(1 - nimg / (self.blur_fade_kimg * 1e3), 0) * self.blur_init_sigma

    def _render(self, params, colls, ws, update_emas=False):
        """(img, colls): G's synthesis (StyleGAN3 has no per-pixel noise); with update_emas the
        magnitude EMAs move and the new buffers come back in colls."""
        variables = {"params": params["G"], **colls["G"]}
        if not update_emas:
            return self.G.apply(variables, ws, method="synthesize"), colls
        img, upd = self.G.apply(variables, ws, method="synthesize", update_emas=True, mutable=["buffers"])
        return img, {**colls, "G": {**colls["G"], **upd}}

    def _d_blurred(self, params, colls, img, c, aug, sigma):
        if sigma is not None:
            img = blur_images(img, sigma, self.blur_radius)
        return self._d(params, colls, img, c, aug)

    # --- phases ---------------------------------------------------------------------------------

    def g_main(self, params, colls, aux, batch, key):
        kw, ka = jax.random.split(key)
        c = self._labels(batch)
        ws, colls = self._ws(params, colls, kw, c)
        img, colls = self._render(params, colls, ws)
        logits = self._d_blurred(params, colls, img, c, (self._p(aux), ka), self._blur_sigma(aux["cur_nimg"]))
        loss = jnp.mean(nonsaturating_g(logits))
        return loss, ({"loss": loss, "fake_score": jnp.mean(logits)}, colls, aux)

    def d_main(self, params, colls, aux, batch, key):
        kw, kaf, kar = jax.random.split(key, 3)
        c = self._labels(batch)
        ws, colls = self._ws(params, colls, kw, c, update_emas=True)
        fake, colls = self._render(params, colls, ws, update_emas=True)
        fake = lax.stop_gradient(fake)
        real = jnp.asarray(batch["image"], jnp.float32)
        p, sigma = self._p(aux), self._blur_sigma(aux["cur_nimg"])
        fake_logits = self._d_blurred(params, colls, fake, c, (p, kaf), sigma)
        real_logits = self._d_blurred(params, colls, real, c, (p, kar), sigma)
        loss = jnp.mean(logistic_d(real_logits, fake_logits))
        metrics = {"loss": loss, "real_score": jnp.mean(real_logits), "fake_score": jnp.mean(fake_logits),
                   "real_sign": jnp.mean(jnp.sign(real_logits))}
        if self.pipe is not None:
            metrics["ada_p"] = p
        if sigma is not None:
            metrics["blur_sigma"] = sigma
        aux = self._ada_step(aux, lax.stop_gradient(real_logits))
        # Dmain runs every step: it advances the clock after its own use; Dreg (later in the same
        # step) subtracts the batch back.
        aux = {**aux, "cur_nimg": aux["cur_nimg"] + real.shape[0]}
        return loss, (metrics, colls, aux)

    def d_r1(self, params, colls, aux, batch, key):
        c = self._labels(batch)
        real = jnp.asarray(batch["image"], jnp.float32)
        aug = (self._p(aux, "ada_p_step"), key)
        sigma = self._blur_sigma(aux["cur_nimg"] - real.shape[0])
        grads = jax.grad(lambda x: jnp.sum(self._d_blurred(params, colls, x, c, aug, sigma)))(real)
        penalty = jnp.sum(jnp.square(grads), axis=(1, 2, 3))
        loss = jnp.mean(penalty) * (self.r1_gamma / 2) * self.r1_interval
        return loss, ({"r1_penalty": jnp.mean(penalty)}, colls, aux)
