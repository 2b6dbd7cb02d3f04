"""The projected discriminator of Projected GAN and StyleGAN-XL (Sauer et al. 2021 / 2022;
StyleGAN-XL's `pg_modules/discriminator.py`).

Per feature network ("backbone"), every image goes through
  DiffAugment ('color,translation,cutout', drawn per sample and per backbone)
  -> FeatureProjector (normalise, resize, frozen backbone, frozen random CCM + CSM; projector.py)
  -> MultiScaleD: one small trainable discriminator per projected map,
and D returns one logit array [N, L_k] per backbone. The trainable part is only the
mini-discriminators (and their class embeddings); everything the projector holds is in the
'frozen' collection, and the spectral-norm vectors are in 'spectral'.

A mini-discriminator, for a map of nominal size s0 (see `nominal_resolutions`):
  DownBlocks (SN-conv 4x4/2, batch-statistics norm, LeakyReLU 0.2) while s > 8, with the channel
  widths NFC[s] -> NFC[s/2] (the first block reads the map's own channels), then
  - unconditional: SN-conv 4x4 valid to 1 channel (no bias);
  - conditional (projection): SN-conv 4x4 valid to cmap_dim channels (no bias) `out`, and
    cmap = FC_lrelu(embed[argmax c]) with embed a [c_dim, embedding_dim] table (trainable; the
    official one starts from ImageNet class embeddings, `embed_init`); the logit map is
    sum_ch(out * cmap) / sqrt(cmap_dim).
Logit maps are flattened and concatenated over the discriminators.

Batch statistics: the official BatchNorm sees only the reals or only the fakes of one GPU's
chunk (D is called on them separately). Here D is also called separately on reals and fakes,
and the statistics are over the whole global batch of that call (one chunk per step).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gigajax.augment.diffaug import DEFAULT_POLICY, SGXL_CUTOUT_RATIO, diff_augment
from gigajax.models.projected.blocks import DownBlock, SNConv2d
from gigajax.models.projected.projector import FeatureProjector, get_backbone, nominal_resolutions, projection_channels
from gigajax.models.stylegan2.layers import FullyConnectedLayer

# Channel widths of the mini-discriminators by nominal resolution.
NFC = {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64, 256: 32, 512: 16, 1024: 8}


def _nearest_key(size: int) -> int:
    return min(NFC, key=lambda k: (abs(k - size), k))


def widths(width_div: int = 1) -> dict:
    """NFC with every width divided by `width_div` (1 = official; CPU-sized variants use more)."""
    return {k: max(v // int(width_div), 1) for k, v in NFC.items()}


class SingleDisc(nn.Module):
    """One mini-discriminator: x [N, h, w, nc] (c [N, c_dim] one-hot when c_dim > 0) -> logit map
    [N, h', w', 1]; with h = s0 the map is (min(s0, 8) - 3) square."""
    nc: int
    start_sz: int
    end_sz: int = 8
    width_div: int = 1
    c_dim: int = 0
    cmap_dim: int = 64
    embedding_dim: int = 320
    embed_init: Callable | None = None

    @nn.compact
    def __call__(self, x, c=None):
        if x.shape[-1] != self.nc:
            raise ValueError(f"SingleDisc: expected {self.nc} input channels, got shape {tuple(x.shape)}")
        s = _nearest_key(self.start_sz)
        width = widths(self.width_div)
        width[s] = self.nc
        ch, i = self.nc, 0
        while s > self.end_sz:
            x = DownBlock(ch, width[s // 2], name=f"down{i}")(x)
            ch, s, i = width[s // 2], s // 2, i + 1
        if not self.c_dim:
            return SNConv2d(ch, 1, 4, use_bias=False, name="out")(x)
        out = SNConv2d(ch, self.cmap_dim, 4, use_bias=False, name="cls")(x)
        if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
            raise ValueError(f"SingleDisc: c must be one-hot [N, {self.c_dim}], got "
                             f"{None if c is None else tuple(c.shape)}")
        table = self.param("embed", self.embed_init or nn.initializers.normal(1.0), (self.c_dim, self.embedding_dim))
        y = table[jnp.argmax(c, axis=1)]
        cmap = FullyConnectedLayer(self.embedding_dim, self.cmap_dim, activation="lrelu", name="embed_proj")(y)
        return jnp.sum(out * cmap[:, None, None, :].astype(out.dtype), axis=-1, keepdims=True) / math.sqrt(self.cmap_dim)


class MultiScaleD(nn.Module):
    """Four mini-discriminators over the four projected maps -> logits [N, L] (flattened, concatenated)."""
    channels: Sequence[int]
    resolutions: Sequence[int]
    c_dim: int = 0
    cmap_dim: int = 64
    embedding_dim: int = 320
    embed_init: Callable | None = None
    width_div: int = 1

    @nn.compact
    def __call__(self, feats, c=None):
        logits = []
        for i, (f, nc, res) in enumerate(zip(feats, self.channels, self.resolutions)):
            d = SingleDisc(nc, res, width_div=self.width_div, c_dim=self.c_dim, cmap_dim=self.cmap_dim,
                           embedding_dim=self.embedding_dim, embed_init=self.embed_init, name=f"mini_disc_{i}")
            logits.append(d(f, c).reshape(f.shape[0], -1))
        return jnp.concatenate(logits, axis=1)


class ProjectedDiscriminator(nn.Module):
    """images [N, H, W, C] in [-1, 1] (C = 3, or 1: repeated to RGB for the backbones), labels
    c [N, c_dim] -> a tuple with one logit array [N, L_k] per backbone (module doc).

    backbones:    feature networks by timm name (`projector.BACKBONES`); the official pair is
                  ('deit_base_distilled_patch16_224', 'tf_efficientnet_lite0').
    interp_size:  resize the backbone input to this size (official: 224 when the resolution is
                  below 224, else None); it must give projected maps of at least 4 pixels.
    proj_im_res:  the nominal input size that sizes the mini-discriminators (official 256).
    cout, expand: projection widths (official 64, True).
    c_dim:        0 = unconditional; else conditional through the projection above.
    diffaug:      DiffAugment every input (official True), with cutout_ratio (StyleGAN-XL: 0.2).
    embed_init:   initializer of the [c_dim, embedding_dim] class embeddings (default N(0, 1)).
    width_div:    divide the mini-discriminators' widths (NFC) by this (official 1).

    Call: `(img, c, key)`; `key` draws the augmentation (required when diffaug). Variables:
    'params' (mini-discriminators), 'spectral' (power-iteration vectors, updated on every call
    made with mutable=['spectral']), 'frozen' (backbone weights and random projections).
    """
    c_dim: int = 0
    backbones: Sequence[str] = ("tf_efficientnet_lite0",)
    interp_size: int | None = 224
    proj_im_res: int = 256
    cout: int = 64
    expand: bool = True
    cmap_dim: int = 64
    embedding_dim: int = 320
    diffaug: bool = True
    diffaug_policy: str = DEFAULT_POLICY
    cutout_ratio: float = SGXL_CUTOUT_RATIO
    embed_init: Callable | None = None
    width_div: int = 1

    @nn.compact
    def __call__(self, img, c=None, key=None):
        if img.ndim != 4 or img.shape[-1] not in (1, 3):
            raise ValueError(f"ProjectedDiscriminator: images must be [N, H, W, 1 or 3], got {tuple(img.shape)}")
        if self.diffaug and key is None:
            raise ValueError("ProjectedDiscriminator: diffaug=True needs a key for the augmentation draws")
        size = self.interp_size or img.shape[1]
        if size % 32 or size < 64:
            raise ValueError(f"ProjectedDiscriminator: the feature networks see {size}x{size} images; the four "
                             f"projected maps (strides 2..16 of that) need a multiple of 32 of at least 64. Set "
                             f"interp_size (official: 224 below 224x224 data; e.g. 64 for small CPU runs).")
        if img.shape[-1] == 1:
            img = jnp.repeat(img, 3, axis=-1)
        out = []
        for i, name in enumerate(self.backbones):
            get_backbone(name)   # an unknown name fails here, before any work
            x = img
            if self.diffaug:
                x = diff_augment(x, jax.random.fold_in(key, i), self.diffaug_policy, cutout_ratio=self.cutout_ratio)
            feats = FeatureProjector(name, self.interp_size, self.cout, self.expand, name=f"{name}_features")(x)
            d = MultiScaleD(projection_channels(self.cout, self.expand), nominal_resolutions(self.proj_im_res),
                            c_dim=self.c_dim, cmap_dim=self.cmap_dim, embedding_dim=self.embedding_dim,
                            embed_init=self.embed_init, width_div=self.width_div, name=f"{name}_discs")
            out.append(d(feats, c if self.c_dim else None))
        return tuple(out)
