"""StyleGAN2 (Karras et al. 2020) training, as NVlabs' `training/loss.py:StyleGAN2Loss` and
`training_loop.py` define it.

Phases, in the official order:
  Gmain  every step:   softplus(-D(G(z, c)))                      (non-saturating logistic)
  Gpl    every 4:      path-length regularisation, on batch / pl_batch_shrink samples
  Dmain  every step:   softplus(D(G(z, c))) + softplus(-D(x, c)); G runs with update_emas=True
                       here, which is where mapping.w_avg tracks the mean w
  Dreg   every 16:     R1 = gamma/2 * |grad_x D(x, c)|^2 on the reals
Lazy phases are scaled by their interval, and each network's Adam gets the lazy-regularisation
compensation: with r = interval / (interval + 1), lr -> lr * r and betas -> betas ** r.

Style mixing (probability 0.9): one cutoff per batch in [1, num_ws); the ws from that index on
come from a second z (its mapping does not update w_avg), as the official run_G does.

Path length: with noise y ~ N(0, I) / sqrt(H * W) and J the Jacobian of the image w.r.t. ws,
a = sqrt(mean_ws(sum_w (J^T y)^2)); pl_mean <- lerp(pl_mean, mean(a), pl_decay) is kept in the
recipe's aux state; the penalty is (a - pl_mean)^2 with pl_mean *not* detached, exactly like the
official code (so a small gradient flows through the running mean). The official
`no_weight_gradients` trick is unnecessary here: the inner J^T y is a VJP w.r.t. ws only.

ADA (StyleGAN2-ADA): with augment='ada' or 'fixed', every image D sees (reals, fakes, R1's reals)
first goes through `gigajax.augment` with probability multiplier p; R1 differentiates through the
augmentation, w.r.t. the un-augmented reals, as the official code does. p lives in the aux state
(so it is checkpointed and survives resume). With 'ada', Dmain accumulates sign(D(real)), and
after every `ada_interval`-th Dmain (counting from the first) p moves by
sign(mean - ada_target) * batch * ada_interval / (ada_kimg * 1000), floored at 0 -- the official
update, which runs after the whole step: Dreg of the same step still uses the p Dmain used.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import optax

from gigajax.augment import PRESETS, adjust_p, augment as augment_images
from gigajax.losses import logistic_d, nonsaturating_g
from gigajax.train.recipe import DataSpec, GANRecipe, Phase, batch_labels


class StyleGAN2Recipe(GANRecipe):
    """Arguments keep the names of NVlabs' train.py / loss.py where they exist.

    z_dim, w_dim, map_layers:  mapping network (map_layers = mapping_kwargs.num_layers).
    cbase, cmax:               channel_base, channel_max for both G and D.
    g_architecture, d_architecture: 'orig' | 'skip' | 'resnet' (official: skip, resnet).
    conv_clamp:                clamp of conv outputs (None = off).
    mbstd_group, mbstd_channels: the epilogue's mbstd_group_size and mbstd_num_channels.
    use_noise:                 G's per-pixel noise inputs (SynthesisLayer use_noise).
    r1_gamma, r1_interval:     R1 weight and lazy interval (0 disables the phase).
    pl_weight, pl_interval, pl_batch_shrink, pl_decay: path-length regularisation.
    style_mixing_prob:         probability of mixing two latents per batch.
    glr, dlr:                  Adam learning rates (eps 1e-8).
    betas:                     Adam (beta1, beta2), official (0, 0.99).
    map_lr_mult:               mapping network lr multiplier (0.01).
    conditional:               use one-hot labels (G: embedded in the mapping; D: projection).
    augment:                   'noaug' | 'ada' (adaptive p) | 'fixed' (p = aug_p throughout), as train.py --aug.
    augpipe:                   a `gigajax.augment.PRESETS` name ('bgc' is the official default).
    aug_p:                     initial p ('ada') or the fixed p ('fixed').
    ada_target, ada_interval, ada_kimg: the ADA heuristic's target, update interval (steps), speed.
    """

    def __init__(self, spec: DataSpec, z_dim: int = 512, w_dim: int = 512, map_layers: int = 8,
                 cbase: int = 32768, cmax: int = 512, g_architecture: str = "skip", d_architecture: str = "resnet",
                 conv_clamp: float | None = 256, mbstd_group: int = 4, mbstd_channels: int = 1, use_noise: bool = True,
                 r1_gamma: float = 10.0, r1_interval: int = 16,
                 pl_weight: float = 2.0, pl_interval: int = 4, pl_batch_shrink: int = 2, pl_decay: float = 0.01,
                 style_mixing_prob: float = 0.9, glr: float = 0.0025, dlr: float = 0.0025, map_lr_mult: float = 0.01,
                 conditional: bool = False, augment: str = "noaug", augpipe: str = "bgc", aug_p: float = 0.0,
                 ada_target: float = 0.6, ada_interval: int = 4, ada_kimg: float = 500.0,
                 betas: tuple = (0.0, 0.99)):
        from gigajax.models.stylegan2 import Discriminator, Generator
        if conditional and not spec.c_dim:
            raise ValueError("StyleGAN2Recipe: conditional=True needs labelled data (config.use_labels=True); "
                             f"the data spec has c_dim={spec.c_dim}")
        if spec.resolution < 4 or spec.resolution & (spec.resolution - 1):
            raise ValueError(f"StyleGAN2Recipe: the resolution must be a power of two >= 4, got {spec.resolution}")
        if augment not in ("noaug", "ada", "fixed"):
            raise ValueError(f"StyleGAN2Recipe: augment={augment!r}; expected 'noaug', 'ada' or 'fixed'")
        if augment != "noaug" and augpipe not in PRESETS:
            raise ValueError(f"StyleGAN2Recipe: augpipe={augpipe!r}; expected one of {sorted(PRESETS)}")
        if augment == "ada" and (int(ada_interval) < 1 or float(ada_kimg) <= 0):
            raise ValueError(f"StyleGAN2Recipe: ada_interval={ada_interval} and ada_kimg={ada_kimg} must be positive")
        self.augment_mode = augment
        self.pipe = PRESETS[augpipe] if augment != "noaug" else None
        self.aug_p, self.ada_target = float(aug_p), float(ada_target)
        self.ada_interval, self.ada_kimg = int(ada_interval), float(ada_kimg)
        self.spec = spec
        self.z_dim, self.w_dim = int(z_dim), int(w_dim)
        self.c_dim = int(spec.c_dim) if conditional else 0
        self.r1_gamma, self.r1_interval = float(r1_gamma), int(r1_interval)
        self.pl_weight, self.pl_interval = float(pl_weight), int(pl_interval)
        self.pl_batch_shrink, self.pl_decay = int(pl_batch_shrink), float(pl_decay)
        self.style_mixing_prob = float(style_mixing_prob)
        self.glr, self.dlr = float(glr), float(dlr)
        self.betas = tuple(float(b) for b in betas)
        self.G = Generator.create(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, img_resolution=spec.resolution,
                                  img_channels=spec.channels,
                                  mapping_kwargs=dict(num_layers=int(map_layers), lr_multiplier=float(map_lr_mult)),
                                  channel_base=int(cbase), channel_max=int(cmax), num_fp16_res=0,
                                  conv_clamp=conv_clamp, architecture=g_architecture, use_noise=bool(use_noise))
        self.D = Discriminator(c_dim=self.c_dim, img_resolution=spec.resolution, img_channels=spec.channels,
                               architecture=d_architecture, channel_base=int(cbase), channel_max=int(cmax),
                               num_fp16_res=0, conv_clamp=conv_clamp,
                               epilogue_kwargs=dict(mbstd_group_size=int(mbstd_group),
                                                    mbstd_num_channels=int(mbstd_channels)))
        self.num_ws = self.G.num_ws
        phases = [Phase("Gmain", "G", self.g_main)]
        if self.pl_weight > 0:
            phases.append(Phase("Greg", "G", self.g_pl, interval=self.pl_interval))
        phases.append(Phase("Dmain", "D", self.d_main))
        if self.r1_gamma > 0:
            phases.append(Phase("Dreg", "D", self.d_r1, interval=self.r1_interval))
        self.phases = tuple(phases)

    # --- contract -------------------------------------------------------------------------------

    def init(self, key, batch: Mapping[str, jax.Array]) -> dict:
        n = min(int(batch["image"].shape[0]), 2)
        img = jnp.asarray(batch["image"][:n], jnp.float32)
        c = self._labels(batch)[:n]
        kg, kd = jax.random.split(key)
        g_vars = self.G.init({"params": kg}, jnp.zeros((n, self.z_dim), jnp.float32), c, noise_mode="const")
        d_vars = self.D.init({"params": kd}, img, c)
        return {"G": dict(g_vars), "D": dict(d_vars)}

    def init_aux(self) -> dict:
        aux = {"pl_mean": jnp.zeros((), jnp.float32)}
        if self.pipe is not None:
            # ada_p: p at the start of a step; ada_p_step: p the last Dmain used (Dreg reuses it);
            # the sign sum/count and the Dmain counter drive the adaptive update.
            aux.update(ada_p=jnp.float32(self.aug_p), ada_p_step=jnp.float32(self.aug_p),
                       ada_sign_sum=jnp.zeros((), jnp.float32), ada_sign_count=jnp.zeros((), jnp.float32),
                       ada_dmain=jnp.zeros((), jnp.int32))
        return aux

    def optimizers(self) -> dict:
        def adam(lr, interval, lazy):
            r = interval / (interval + 1) if lazy else 1.0
            return optax.adam(lr * r, b1=self.betas[0] ** r, b2=self.betas[1] ** r, eps=1e-8)
        return {"G": adam(self.glr, self.pl_interval, self.pl_weight > 0),
                "D": adam(self.dlr, self.r1_interval, self.r1_gamma > 0)}

    def generate(self, g_variables, z, c, key, truncation_psi=1.0, truncation_cutoff=None):
        """Snapshot/metric images: const noise, as NVlabs' snapshots and metrics use."""
        del key
        return self.G.apply(g_variables, z, self._c(c, z.shape[0]), truncation_psi=truncation_psi,
                            truncation_cutoff=truncation_cutoff, noise_mode="const")

    def mapping(self, g_variables, z, c):
        """PPL's mapping: ws [N, num_ws, w_dim] (no truncation)."""
        return self.G.apply(g_variables, z, self._c(c, z.shape[0]), method="map")

    def synthesis(self, g_variables, ws, c, key):
        """PPL's synthesis: const noise, as NVlabs' perceptual_path_length uses."""
        del c, key
        return self.G.apply(g_variables, ws, method="synthesize", noise_mode="const")

    # --- G and D --------------------------------------------------------------------------------

    def _c(self, c, n):
        return jnp.asarray(c, jnp.float32) if self.c_dim else jnp.zeros((n, 0), jnp.float32)

    def _labels(self, batch):
        return batch_labels(batch, self.c_dim, "StyleGAN2Recipe")

    def _map(self, params, colls, z, c, update_emas):
        variables = {"params": params["G"], **colls["G"]}
        if not update_emas:
            return self.G.apply(variables, z, c, method="map"), colls
        ws, upd = self.G.apply(variables, z, c, update_emas=True, method="map", mutable=["buffers"])
        return ws, {**colls, "G": {**colls["G"], **upd}}

    def _ws(self, params, colls, key, c, update_emas=False):
        """ws [N, num_ws, w_dim] for fresh z, with style mixing (module doc)."""
        kz, kz2, kcut, kp = jax.random.split(key, 4)
        n = c.shape[0]
        ws, colls = self._map(params, colls, jax.random.normal(kz, (n, self.z_dim)), c, update_emas)
        if self.style_mixing_prob > 0 and self.num_ws > 1:
            cutoff = jax.random.randint(kcut, (), 1, self.num_ws)
            cutoff = jnp.where(jax.random.uniform(kp, ()) < self.style_mixing_prob, cutoff, self.num_ws)
            ws2, _ = self._map(params, colls, jax.random.normal(kz2, (n, self.z_dim)), c, False)
            ws = jnp.where((jnp.arange(self.num_ws) < cutoff)[None, :, None], ws, ws2)
        return ws, colls

    def _synth(self, params, colls, ws, key):
        return self.G.apply({"params": params["G"], **colls["G"]}, ws, method="synthesize", noise_mode="random",
                            rngs={"noise": key})

    def _d(self, params, colls, img, c, aug=None):
        """D logits [N, 1]; aug = (p, key) augments `img` first (ADA)."""
        if aug is not None and self.pipe is not None:
            p, key = aug
            img = augment_images(self.pipe, img, p, key)
        return self.D.apply({"params": params["D"], **colls["D"]}, img, c)

    def _ada_step(self, aux, real_logits):
        """Dmain's ADA bookkeeping (module doc): accumulate signs, adjust p every ada_interval-th Dmain."""
        if self.pipe is None:
            return aux
        total = aux["ada_sign_sum"] + jnp.sum(jnp.sign(real_logits))
        count = aux["ada_sign_count"] + real_logits.size
        new = {**aux, "ada_p_step": aux["ada_p"], "ada_dmain": aux["ada_dmain"] + 1}
        if self.augment_mode != "ada":
            return new
        due = aux["ada_dmain"] % self.ada_interval == 0
        adjusted = adjust_p(aux["ada_p"], total / count, batch_size=real_logits.shape[0], interval=self.ada_interval,
                            target=self.ada_target, speed_kimg=self.ada_kimg)
        return {**new, "ada_p": jnp.where(due, adjusted, aux["ada_p"]),
                "ada_sign_sum": jnp.where(due, 0.0, total), "ada_sign_count": jnp.where(due, 0.0, count)}

    # --- phases ---------------------------------------------------------------------------------

    def _p(self, aux, key="ada_p"):
        return aux[key] if self.pipe is not None else None

    def g_main(self, params, colls, aux, batch, key):
        kw, kn, ka = jax.random.split(key, 3)
        c = self._labels(batch)
        ws, colls = self._ws(params, colls, kw, c)
        logits = self._d(params, colls, self._synth(params, colls, ws, kn), c, (self._p(aux), ka))
        loss = jnp.mean(nonsaturating_g(logits))
        return loss, ({"loss": loss, "fake_score": jnp.mean(logits)}, colls, aux)

    def g_pl(self, params, colls, aux, batch, key):
        kw, kn, ky = jax.random.split(key, 3)
        n = max(batch["image"].shape[0] // self.pl_batch_shrink, 1)
        c = self._labels(batch)[:n]
        ws, colls = self._ws(params, colls, kw, c)
        img, vjp = jax.vjp(lambda w: self._synth(params, colls, w, kn), ws)
        h, w = img.shape[1], img.shape[2]
        y = jax.random.normal(ky, img.shape, img.dtype) / jnp.sqrt(jnp.float32(h * w))
        (grads,) = vjp(y)
        lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))
        pl_mean = aux["pl_mean"] + (jnp.mean(lengths) - aux["pl_mean"]) * self.pl_decay
        penalty = jnp.square(lengths - pl_mean)
        loss = jnp.mean(penalty) * self.pl_weight * self.pl_interval
        aux = {**aux, "pl_mean": jax.lax.stop_gradient(pl_mean)}
        return loss, ({"pl_penalty": jnp.mean(penalty), "pl_mean": pl_mean}, colls, aux)

    def d_main(self, params, colls, aux, batch, key):
        kw, kn, kaf, kar = jax.random.split(key, 4)
        c = self._labels(batch)
        ws, colls = self._ws(params, colls, kw, c, update_emas=True)
        fake = jax.lax.stop_gradient(self._synth(params, colls, ws, kn))
        real = jnp.asarray(batch["image"], jnp.float32)
        p = self._p(aux)
        fake_logits = self._d(params, colls, fake, c, (p, kaf))
        real_logits = self._d(params, colls, real, c, (p, kar))
        loss = jnp.mean(logistic_d(real_logits, fake_logits))
        metrics = {"loss": loss, "real_score": jnp.mean(real_logits), "fake_score": jnp.mean(fake_logits),
                   "real_sign": jnp.mean(jnp.sign(real_logits))}
        if self.pipe is not None:
            metrics["ada_p"] = p
        return loss, (metrics, colls, self._ada_step(aux, jax.lax.stop_gradient(real_logits)))

    def d_r1(self, params, colls, aux, batch, key):
        c = self._labels(batch)
        real = jnp.asarray(batch["image"], jnp.float32)
        aug = (self._p(aux, "ada_p_step"), key)
        grads = jax.grad(lambda x: jnp.sum(self._d(params, colls, x, c, aug)))(real)
        penalty = jnp.sum(jnp.square(grads), axis=(1, 2, 3))
        loss = jnp.mean(penalty) * (self.r1_gamma / 2) * self.r1_interval
        return loss, ({"r1_penalty": jnp.mean(penalty)}, colls, aux)
