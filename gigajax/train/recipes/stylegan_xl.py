"""StyleGAN-XL (Sauer et al. 2022) training, one progressive-growing stage at a time, as
autonomousvision/stylegan-xl's `train.py` and `training/loss.py:ProjectedGANLoss` define it.

A stage trains at `spec.resolution`. The stem stage (resolution == stem_resolution) trains a
`stylegan_xl.Generator`; stage k > 0 trains a `SuperresGenerator` grown by k superres stages of
`head_layers` each (up_factor 2), initialised from the previous stage's G_ema (`stem_variables`):
only the newest head layers and the synthesis input train, the mapping and older layers are
frozen (`trainable_mask`). D is built fresh for every stage.

Phases (official order; each draws its own z, labels from the batch):
  Gmain  every step:  sum_k sum_b mean_n(-D_k(x_fake)[b, n])  +  cls_weight * CE(classifier(x_fake), c)
  Greg   every 4:     path-length regularisation (stem stage only, from pl_start_kimg on, weight pl_weight,
                      without the interval gain), as the official code; it drops its update before then
  Dmain  every step:  sum_k sum_b mean_n relu(1 + D_k(x_fake)) + relu(1 - D_k(x_real)); G's mapping
                      tracks its per-class w_avg here
where D_k are the logits of feature network k (`ProjectedDiscriminator`): each sample's logits are
averaged, samples and feature networks summed (the official loss sums over a GPU's chunk; here one
chunk is the global batch). Every image D sees is first blurred with sigma fading from
blur_init_sigma to 0 over blur_fade_kimg (a clock in the aux state, restarting with each stage),
then DiffAugmented inside D. G's synthesis never updates its magnitude EMAs (the official loss
calls it with update_emas=False: "enabling emas leads to collapse with PG").

Classifier guidance (superres stages, cls_weight > 0): cross-entropy of a frozen classifier on G's
raw images against the conditioning label. The classifier is `classifier` = 'auto' (a small CNN
trained once on the dataset and cached, `gigajax.train.classifier`), or a timm DeiT name with
`classifier_path` (the official 'deit_small_distilled_patch16_224': ImageNet normalisation, bilinear
resize to 224). Its variables live in the aux state.

Adam (betas 0, 0.99, eps 1e-8) with the official lazy-regularisation compensation applied to both
networks whatever runs (G interval 4, D interval 16): G lr * 4/5, beta2 ** (4/5); D lr * 16/17,
beta2 ** (16/17).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from gigajax import ops
from gigajax.train.recipe import DataSpec, GANRecipe, Phase, batch_labels
from gigajax.train.recipes.stylegan3 import blur_images
from gigajax.train.step import SKIP_UPDATE

G_REG_INTERVAL, D_REG_INTERVAL = 4, 16


def stage_index(resolution: int, stem_resolution: int) -> int:
    """0 for the stem stage, k for the k-th superres (up_factor 2) stage."""
    k = math.log2(resolution / stem_resolution) if resolution >= stem_resolution else -1
    if k < 0 or k != int(k):
        raise ValueError(f"StyleGAN-XL: resolution {resolution} is not stem_resolution={stem_resolution} "
                         f"times a power of two")
    return int(k)


def hinge_sum(logits: Sequence[jax.Array], sign: float) -> jax.Array:
    """sum_k sum_b mean_n relu(1 + sign * L_k[b, n]) over the per-backbone logits L_k [N, n_k]."""
    return sum(jnp.sum(jnp.mean(jax.nn.relu(1 + sign * l), axis=1)) for l in logits)


class StyleGANXLRecipe(GANRecipe):
    """Arguments keep the names of StyleGAN-XL's train.py where they exist.

    stem_resolution:   resolution of the stem stage (official 16).
    stem_variables:    for a superres stage, the previous stage's G_ema variables (numpy or jax).
    allow_missing_stem: build a superres stage without them (random stem): only for restoring a
                       checkpoint, which overwrites every variable.
    z_dim, w_dim, map_layers: mapping (official 64, 512, 2).
    cbase, cmax:       train.py --cbase/--cmax; the generator gets twice each (channel_base = 2 cbase).
    syn_layers:        stem synthesis layers (official default 14; the ImageNet recipe 10).
    head_layers:       layers each superres stage adds (official 7).
    margin_size:       StyleGAN3 synthesis margin (official 10).
    cfg:               'stylegan3-t' or 'stylegan3-r'.
    conditional:       class-conditional G and D (official --cond).
    rand_embedding:    random class tables instead of `class_embeddings` (a [1000, 320] table or the
                       path of the official in_embeddings/tf_efficientnet_lite0.pkl).
    backbones, interp_size, proj_im_res, d_width_div, cutout_ratio, diffaug: the projected
                       discriminator (`gigajax.models.projected.ProjectedDiscriminator`);
                       interp_size None = the official rule, 224 when the resolution is below 224.
    blur_init_sigma, blur_fade_kimg: the D input blur (official 2, 300).
    pl_weight, pl_start_kimg, pl_batch_shrink, pl_decay: stem path-length regularisation (2, 1000, 2, 0.01).
    cls_weight, classifier, classifier_path: classifier guidance (superres stages only; official 0);
                       classifier is 'auto', a timm DeiT name, or a pair (apply(variables, images) ->
                       logits, variables) of the user's own.
    glr, dlr:          Adam learning rates before the lazy compensation (official 0.0025, 0.002).
    """

    def __init__(self, spec: DataSpec, *, stem_resolution: int = 16, stem_variables: Mapping | None = None,
                 z_dim: int = 64, w_dim: int = 512, map_layers: int = 2, cbase: int = 32768, cmax: int = 512,
                 syn_layers: int = 10, head_layers: int = 7, margin_size: int = 10, cfg: str = "stylegan3-t",
                 conditional: bool = True, rand_embedding: bool = False, class_embeddings=None,
                 backbones: Sequence[str] = ("tf_efficientnet_lite0",), interp_size: int | None = None,
                 proj_im_res: int = 256, d_width_div: int = 1, cutout_ratio: float = 0.2, diffaug: bool = True,
                 blur_init_sigma: float = 2.0, blur_fade_kimg: float = 300.0, pl_weight: float = 2.0,
                 pl_start_kimg: float = 1000.0, pl_batch_shrink: int = 2, pl_decay: float = 0.01,
                 cls_weight: float = 0.0, classifier="auto", classifier_path: str | None = None,
                 dataset: str | None = None, glr: float = 0.0025, dlr: float = 0.002,
                 betas: tuple = (0.0, 0.99), map_lr_mult: float = 0.01, allow_missing_stem: bool = False):
        from gigajax.models.projected import ProjectedDiscriminator
        from gigajax.models.stylegan_xl import Generator, SuperresGenerator
        if cfg not in ("stylegan3-t", "stylegan3-r"):
            raise ValueError(f"StyleGANXLRecipe: cfg={cfg!r}; expected 'stylegan3-t' or 'stylegan3-r'")
        if conditional and not spec.c_dim:
            raise ValueError("StyleGANXLRecipe: conditional=True needs labelled data (config.use_labels=True); "
                             f"the data spec has c_dim={spec.c_dim}")
        self.spec = spec
        self.stage = stage_index(spec.resolution, int(stem_resolution))
        if self.stage > 0 and stem_variables is None and not allow_missing_stem:
            raise ValueError(f"StyleGANXLRecipe: the {spec.resolution}x{spec.resolution} stage grows a "
                             f"{spec.resolution // 2}x{spec.resolution // 2} generator; pass the previous stage's "
                             f"G_ema variables as stem_variables")
        self.z_dim, self.w_dim = int(z_dim), int(w_dim)
        self.c_dim = int(spec.c_dim) if conditional else 0
        is_r = cfg == "stylegan3-r"
        mult = 4 if is_r else 2
        stem_kwargs = dict(
            z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, img_resolution=int(stem_resolution),
            img_channels=spec.channels,
            mapping_kwargs=dict(num_layers=int(map_layers), rand_embedding=bool(rand_embedding),
                                lr_multiplier=float(map_lr_mult)),
            channel_base=int(cbase) * mult, channel_max=int(cmax) * mult, num_layers=int(syn_layers),
            margin_size=int(margin_size), num_fp16_res=0, conv_clamp=256,
            magnitude_ema_beta=0.999)
        if is_r:
            stem_kwargs.update(conv_kernel=1, use_radial_filters=True)
        G = Generator.create(**stem_kwargs)
        for _ in range(self.stage):
            G = SuperresGenerator.create(G.img_resolution * 2, G, int(head_layers), 2)
        self.G = G
        self.stem_variables = stem_variables
        self.class_embeddings = class_embeddings
        self.rand_embedding = bool(rand_embedding)
        if interp_size is None:
            interp_size = 224 if spec.resolution < 224 else None
        self.D = ProjectedDiscriminator(c_dim=self.c_dim, backbones=tuple(backbones), interp_size=interp_size,
                                        proj_im_res=int(proj_im_res), width_div=int(d_width_div),
                                        cutout_ratio=float(cutout_ratio), diffaug=bool(diffaug))
        self.blur_init_sigma, self.blur_fade_kimg = float(blur_init_sigma), float(blur_fade_kimg)
        self.blur_radius = int(self.blur_init_sigma * 3) if self.blur_fade_kimg > 0 else 0
        self.pl_weight = float(pl_weight) if self.stage == 0 else 0.0
        self.pl_start_kimg, self.pl_batch_shrink, self.pl_decay = float(pl_start_kimg), int(pl_batch_shrink), float(pl_decay)
        self.cls_weight = float(cls_weight) if (self.stage > 0 and self.c_dim) else 0.0
        self.classifier_name, self.classifier_path, self.dataset = classifier, classifier_path, dataset
        self._classifier = None
        if self.cls_weight > 0:
            self._classifier_parts()   # trains or reads it now, outside any jit trace
        self.glr, self.dlr, self.betas = float(glr), float(dlr), tuple(float(b) for b in betas)
        phases = [Phase("Gmain", "G", self.g_main)]
        if self.pl_weight > 0:
            phases.append(Phase("Greg", "G", self.g_pl, interval=G_REG_INTERVAL))
        phases.append(Phase("Dmain", "D", self.d_main))
        self.phases = tuple(phases)

    # --- contract -------------------------------------------------------------------------------

    def init(self, key, batch):
        from gigajax.models.stylegan_xl import init_variables, superres_variables
        n = min(int(batch["image"].shape[0]), 2)
        img = jnp.asarray(batch["image"][:n], jnp.float32)
        c = self._labels(batch)[:n]
        kg, kd, ka = jax.random.split(key, 3)
        if self.stage == 0 or self.stem_variables is None:   # the latter: shapes for a restore only
            g_vars = init_variables(self.G, kg, None if self.rand_embedding else self.class_embeddings)
        else:
            g_vars = superres_variables(self.G, self.stem_variables, kg)
        d_vars = self.D.init({"params": kd}, img, c if self.c_dim else None, ka)
        return {"G": dict(g_vars), "D": dict(d_vars)}

    def init_aux(self):
        aux = {"cur_nimg": jnp.zeros((), jnp.float32)}
        if self.pl_weight > 0:
            aux["pl_mean"] = jnp.zeros((), jnp.float32)
        if self.cls_weight > 0:
            aux["classifier"] = self._classifier_parts()[1]
        return aux

    def optimizers(self):
        def adam(lr, interval):
            r = interval / (interval + 1)
            return optax.adam(lr * r, b1=self.betas[0] ** r, b2=self.betas[1] ** r, eps=1e-8)
        g_opt = adam(self.glr, G_REG_INTERVAL)
        if self.stage > 0:
            from gigajax.models.stylegan_xl import trainable_mask
            template = jax.eval_shape(lambda: self.G.init(jax.random.PRNGKey(0), jnp.zeros((1, self.z_dim)),
                                                          jnp.zeros((1, self.c_dim)) if self.c_dim else None))
            labels = jax.tree.map(lambda t: "train" if t else "freeze", trainable_mask(self.G, template["params"]))
            g_opt = optax.multi_transform({"train": g_opt, "freeze": optax.set_to_zero()}, labels)
        return {"G": g_opt, "D": adam(self.dlr, D_REG_INTERVAL)}

    def generate(self, g_variables, z, c, key, truncation_psi=1.0, truncation_cutoff=None):
        del key
        return self.G.apply(g_variables, z, self._c(c, z.shape[0]), truncation_psi=truncation_psi,
                            truncation_cutoff=truncation_cutoff)

    def mapping(self, g_variables, z, c):
        return self.G.apply(g_variables, z, self._c(c, z.shape[0]), method="map")

    def synthesis(self, g_variables, ws, c, key):
        del c, key
        return self.G.apply(g_variables, ws, method="synthesize")

    def synthesis_t(self, g_variables, ws, c, transform):
        del c
        return self.G.apply(g_variables, ws, method="synthesize", transform=transform)

    # --- pieces ---------------------------------------------------------------------------------

    def _c(self, c, n):
        return jnp.asarray(c, jnp.float32) if self.c_dim else None

    def _labels(self, batch):
        return batch_labels(batch, self.c_dim, "StyleGANXLRecipe")

    def _classifier_parts(self):
        """(apply(variables, images [N, R, R, C] in [-1, 1]) -> logits, variables)."""
        if self._classifier is None:
            if isinstance(self.classifier_name, tuple):
                apply, variables = self.classifier_name
                self._classifier = (apply, jax.tree.map(np.asarray, variables))
            elif self.classifier_name == "auto":
                from gigajax.train.classifier import trained_classifier
                if self.dataset is None:
                    raise ValueError("StyleGANXLRecipe: classifier='auto' trains a classifier on the dataset; "
                                     "pass dataset=config.dataset")
                model, variables, _ = trained_classifier(self.dataset, self.spec.resolution)
                self._classifier = (model.apply, jax.tree.map(np.asarray, variables))
            else:
                from gigajax.models.vit import NORM_STATS, load_timm_vit, vit_from_name
                if not self.classifier_path:
                    raise ValueError(f"StyleGANXLRecipe: classifier={self.classifier_name!r} needs its timm weights "
                                     f"file as classifier_path")
                vit = vit_from_name(self.classifier_name)
                mean, std = (jnp.asarray(v, jnp.float32) for v in NORM_STATS[self.classifier_name])

                def apply(variables, x):
                    if x.shape[-1] == 1:
                        x = jnp.repeat(x, 3, axis=-1)
                    x = ops.resize_bilinear(((x + 1) / 2 - mean) / std, 224)
                    return vit.apply(variables, x)
                self._classifier = (apply, load_timm_vit(self.classifier_path, self.classifier_name))
        return self._classifier

    def _blur_sigma(self, nimg):
        if self.blur_radius == 0:
            return None
        return jnp.maximum(1 - nimg / (self.blur_fade_kimg * 1e3), 0) * self.blur_init_sigma

    def _ws(self, params, colls, key, c, update_emas=False):
        z = jax.random.normal(key, (c.shape[0], self.z_dim))
        variables = {"params": params["G"], **colls["G"]}
        if not update_emas:
            return self.G.apply(variables, z, self._c(c, z.shape[0]), method="map"), colls
        ws, upd = self.G.apply(variables, z, self._c(c, z.shape[0]), update_emas=True, method="map",
                               mutable=["buffers"])
        return ws, {**colls, "G": {**colls["G"], **upd}}

    def _synth(self, params, colls, ws):
        return self.G.apply({"params": params["G"], **colls["G"]}, ws, method="synthesize")

    def _d(self, params, colls, img, c, key, sigma):
        """(per-backbone logits, colls with D's spectral-norm vectors advanced)."""
        if sigma is not None:
            img = blur_images(img, sigma, self.blur_radius)
        logits, upd = self.D.apply({"params": params["D"], **colls["D"]}, img, self._c(c, img.shape[0]), key,
                                   mutable=["spectral"])
        return logits, {**colls, "D": {**colls["D"], **upd}}

    # --- phases ---------------------------------------------------------------------------------

    def g_main(self, params, colls, aux, batch, key):
        kw, kd = jax.random.split(key)
        c = self._labels(batch)
        ws, colls = self._ws(params, colls, kw, c)
        img = self._synth(params, colls, ws)
        logits, colls = self._d(params, colls, img, c, kd, self._blur_sigma(aux["cur_nimg"]))
        adv = sum(jnp.sum(jnp.mean(-l, axis=1)) for l in logits)
        loss = adv
        metrics = {"adv": adv / img.shape[0], "fake_score": jnp.mean(jnp.concatenate(logits, axis=1))}
        if self.cls_weight > 0:
            apply, _ = self._classifier_parts()
            cls_logits = apply(aux["classifier"], img)
            ce = jnp.mean(optax.softmax_cross_entropy(cls_logits, c))
            loss = loss + self.cls_weight * ce
            metrics.update(cls_ce=ce, cls_acc=jnp.mean(jnp.argmax(cls_logits, 1) == jnp.argmax(c, 1)))
        metrics["loss"] = loss
        return loss, (metrics, colls, aux)

    def g_pl(self, params, colls, aux, batch, key):
        kw, ky = jax.random.split(key)
        n = max(batch["image"].shape[0] // self.pl_batch_shrink, 1)
        c = self._labels(batch)[:n]
        ws, colls = self._ws(params, colls, kw, c)
        img, vjp = jax.vjp(lambda w: self._synth(params, colls, w), ws)
        y = jax.random.normal(ky, img.shape, img.dtype) / jnp.sqrt(jnp.float32(img.shape[1] * img.shape[2]))
        (grads,) = vjp(y)
        lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))
        pl_mean = aux["pl_mean"] + (jnp.mean(lengths) - aux["pl_mean"]) * self.pl_decay
        loss = jnp.mean(jnp.square(lengths - pl_mean)) * self.pl_weight
        active = aux["cur_nimg"] >= self.pl_start_kimg * 1e3
        aux = {**aux, "pl_mean": lax.stop_gradient(pl_mean)}
        return loss, ({"pl_penalty": loss / self.pl_weight, "pl_mean": pl_mean, SKIP_UPDATE: ~active}, colls, aux)

    def d_main(self, params, colls, aux, batch, key):
        kw, kf, kr = jax.random.split(key, 3)
        c = self._labels(batch)
        ws, colls = self._ws(params, colls, kw, c, update_emas=True)
        fake = lax.stop_gradient(self._synth(params, colls, ws))
        real = jnp.asarray(batch["image"], jnp.float32)
        sigma = self._blur_sigma(aux["cur_nimg"])
        fake_logits, colls = self._d(params, colls, fake, c, kf, sigma)
        real_logits, colls = self._d(params, colls, real, c, kr, sigma)
        loss_fake, loss_real = hinge_sum(fake_logits, 1.0), hinge_sum(real_logits, -1.0)
        loss = loss_fake + loss_real
        n = real.shape[0]
        metrics = {"loss": loss, "loss_fake": loss_fake / n, "loss_real": loss_real / n,
                   "real_score": jnp.mean(jnp.concatenate(real_logits, axis=1)),
                   "fake_score": jnp.mean(jnp.concatenate(fake_logits, axis=1))}
        if sigma is not None:
            metrics["blur_sigma"] = sigma
        # Dmain runs every step: the clock moves after its own use.
        return loss, (metrics, colls, {**aux, "cur_nimg": aux["cur_nimg"] + n})
