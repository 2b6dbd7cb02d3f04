"""StyleGAN v1's training (official NVlabs/stylegan, config F): ProGAN's phases, growth and
fade-in (gigajax.train.recipes.progan: static level, alpha clock, faded reals, fresh Adam per
phase, handover at fixed shapes) with the style-based G and the blurred D_basic.

- Loss: non-saturating logistic. D: softplus(D(fake)) + softplus(-D(real)) + r1_gamma / 2 *
  ||grad D(real)||**2 on the processed (faded) reals, every step (v1 has no lazy regularisation).
  G: softplus(-D(fake)).
- Style mixing with probability `style_mixing_prob` for every fake (G's and D's): one cutoff per
  minibatch, uniform in [1, cur_layers) with cur_layers = the level's 2 * level + 2 layers; the
  layers from the cutoff on take the second latent's w.
- w_avg: lerp(batch mean of w, w_avg, 0.995) in both the G and the D graph, as the official
  training graphs each update it.
- Labels (use_labels): the mapping's label embedding and D's label switch.
- Sampling (grids, FID): no truncation, random noise (the official is_validation); PPL: w space
  with the stored 'const' noise (the official re-draws its noise buffers once per minibatch).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gigajax.models.progan import Discriminator
from gigajax.models.stylegan1 import Generator
from gigajax.train.recipe import DataSpec, batch_labels
from gigajax.train.recipes.progan import ProGANRecipe


class StyleGAN1Recipe(ProGANRecipe):
    """level, fading, fade_kimg, init_path: as ProGANRecipe. latent_size, dlatent_size,
    mapping_layers, mapping_fmaps, mapping_lrmul, fmap_base, fmap_decay, fmap_max,
    mbstd_group_size, const_input_layer, use_noise, use_pixel_norm, use_instance_norm,
    use_styles: the networks (the last five are the official G_synthesis switches;
    gigajax.models.stylegan1). lr, beta1, beta2, eps: Adam for both (official 0.001, 0, 0.99, 1e-8). r1_gamma: R1 weight (10). style_mixing_prob (0.9), w_avg_beta (0.995).
    conditional: use the dataset's labels."""

    def __init__(self, spec: DataSpec, *, level: int, fading: bool = False, fade_kimg: float = 600.0,
                 latent_size: int = 512, dlatent_size: int = 512, mapping_layers: int = 8, mapping_fmaps: int = 512,
                 mapping_lrmul: float = 0.01, fmap_base: int = 8192, fmap_decay: float = 1.0, fmap_max: int = 512,
                 mbstd_group_size: int = 4, lr: float = 0.001, beta1: float = 0.0, beta2: float = 0.99,
                 eps: float = 1e-8, r1_gamma: float = 10.0, style_mixing_prob: float = 0.9, w_avg_beta: float = 0.995,
                 conditional: bool = False, const_input_layer: bool = True, use_noise: bool = True,
                 use_pixel_norm: bool = False, use_instance_norm: bool = True, use_styles: bool = True,
                 init_path: str | None = None):
        c_dim = spec.c_dim if conditional else 0
        if conditional and not spec.c_dim:
            raise ValueError("StyleGAN1Recipe: conditional=True needs a dataset with labels (use_labels=True)")
        self.G = Generator(resolution=spec.resolution, num_channels=spec.channels, latent_size=latent_size,
                           label_size=c_dim, dlatent_size=dlatent_size, mapping_layers=mapping_layers,
                           mapping_fmaps=mapping_fmaps, mapping_lrmul=mapping_lrmul, fmap_base=fmap_base,
                           fmap_decay=fmap_decay, fmap_max=fmap_max, const_input_layer=const_input_layer,
                           use_noise=use_noise, use_pixel_norm=use_pixel_norm, use_instance_norm=use_instance_norm,
                           use_styles=use_styles)
        self.D = Discriminator(resolution=spec.resolution, num_channels=spec.channels, fmap_base=fmap_base,
                               fmap_decay=fmap_decay, fmap_max=fmap_max, mbstd_group_size=mbstd_group_size,
                               blur=True, label_size=c_dim)
        self._setup(spec, level, fading, fade_kimg, latent_size, c_dim, lr, beta1, beta2, eps, init_path)
        self.r1_gamma, self.style_mixing_prob, self.w_avg_beta = float(r1_gamma), float(style_mixing_prob), float(w_avg_beta)

    def _init_networks(self, key, n):
        kg, kd = jax.random.split(key)
        c = jnp.zeros((n, self.c_dim)) if self.c_dim else None
        g = self.G.init({"params": kg}, jnp.zeros((n, self.z_dim)), c, method=self.G.init_all)
        d = self.D.init(kd, jnp.zeros((n, self.spec.resolution, self.spec.resolution, self.spec.channels)),
                        method=self.D.init_all)
        return dict(g), dict(d)

    @property
    def cur_layers(self) -> int:
        return 2 * self.level + 2

    # --- G and D ---------------------------------------------------------------------------------

    def _labels(self, batch):
        return batch_labels(batch, self.c_dim, "StyleGAN1Recipe") if self.c_dim else None

    def mixed_ws(self, g_params, g_colls, z, c, key):
        """Training ws [N, num_layers, dlatent] with style mixing, and G's buffers with w_avg updated."""
        kz, kmix, kcut = jax.random.split(key, 3)
        v = {"params": g_params, **g_colls}
        ws, upd = self.G.apply(v, z, c, self.w_avg_beta, method="map_train", mutable=["buffers"])
        if self.style_mixing_prob > 0:
            ws2 = self.G.apply(v, self.sample_z(kz, z.shape[0]), c, method="map", truncation_psi=1.0)
            mix = jax.random.uniform(kmix) < self.style_mixing_prob
            cutoff = jnp.where(mix, jax.random.randint(kcut, (), 1, max(self.cur_layers, 2)), self.cur_layers)
            ws = jnp.where((jnp.arange(ws.shape[1]) < cutoff)[None, :, None], ws, ws2)
        return ws, {**g_colls, **upd}

    def _fake(self, params, colls, z, c, key, alpha):
        """Training fakes with style mixing; returns (images, G's updated buffers)."""
        kw, knoise = jax.random.split(key)
        ws, g_colls = self.mixed_ws(params["G"], colls["G"], z, c, kw)
        img = self.G.apply({"params": params["G"], **g_colls}, ws, self.level, alpha if self.fading else None,
                           "random", method="synthesis", rngs={"noise": knoise})
        return img, g_colls

    def _score(self, d_params, img, c, alpha):
        return self.D.apply({"params": d_params}, img, self.level, alpha if self.fading else None, c)

    def d_loss(self, params, colls, aux, batch, key):
        kz, kf = jax.random.split(key)
        alpha = self.alpha(aux["cur_nimg"])
        real = self.reals(batch["image"], alpha)
        c = self._labels(batch)
        fake, g_colls = self._fake(params, colls, self.sample_z(kz, real.shape[0]), c, kf, alpha)
        fake = jax.lax.stop_gradient(fake)
        fake_out = self._score(params["D"], fake, c, alpha)
        def real_sum(x):
            scores = self._score(params["D"], x, c, alpha)
            return jnp.sum(scores), scores
        (_, real_out), grad = jax.value_and_grad(real_sum, has_aux=True)(real)
        r1 = jnp.sum(jnp.square(grad), axis=(1, 2, 3))
        loss = jnp.mean(jax.nn.softplus(fake_out) + jax.nn.softplus(-real_out) + self.r1_gamma * 0.5 * r1)
        metrics = {"real_score": jnp.mean(real_out), "fake_score": jnp.mean(fake_out), "r1": jnp.mean(r1),
                   "alpha": alpha}
        return loss, (metrics, {**colls, "G": g_colls}, aux)

    def g_loss(self, params, colls, aux, batch, key):
        alpha = self.alpha(aux["cur_nimg"])
        n = batch["image"].shape[0]
        c = self._labels(batch)
        kz, kf = jax.random.split(key)
        fake, g_colls = self._fake(params, colls, self.sample_z(kz, n), c, kf, alpha)
        fake_out = self._score(params["D"], fake, c, alpha)
        loss = jnp.mean(jax.nn.softplus(-fake_out))
        new_aux = {**aux, "cur_nimg": aux["cur_nimg"] + n}
        g_colls = {**g_colls, "progan": {"alpha": self.alpha(new_aux["cur_nimg"])}}
        return loss, ({"fake_score": jnp.mean(fake_out)}, {**colls, "G": g_colls}, new_aux)

    # --- sampling ---------------------------------------------------------------------------------

    def generate(self, g_variables, z, c, key, truncation_psi=1.0, truncation_cutoff=8):
        alpha = self.sampling_alpha(g_variables)
        img = self.G.apply(g_variables, z, c if self.c_dim else None, self.level, alpha if self.fading else None,
                           truncation_psi, truncation_cutoff, "random", rngs={"noise": key})
        return self._full_size(img)

    def mapping(self, g_variables, z, c):
        """PPL's mapping: ws [N, num_layers, dlatent] without truncation."""
        return self.G.apply(g_variables, z, c if self.c_dim else None, method="map", truncation_psi=1.0)

    def synthesis(self, g_variables, ws, c, key):
        """PPL's synthesis: the stored noise ('const'), so a pair shares its noise."""
        del c, key
        alpha = self.sampling_alpha(g_variables)
        img = self.G.apply(g_variables, ws, self.level, alpha if self.fading else None, "const", method="synthesis")
        return self._full_size(img)
