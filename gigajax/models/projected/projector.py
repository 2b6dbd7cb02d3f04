"""The frozen half of the projected discriminator: a pretrained feature network and the random
projections that mix its features (Sauer et al. 2021, sec. 3; StyleGAN-XL's
`pg_modules/projector.py` with proj_type 2).

For one backbone, images x [N, H, W, 3] in [-1, 1] go through
  1. the backbone's input normalisation: (x + 1) / 2, then (x - mean) / std per channel
     (EfficientNet-Lite0: mean = std = 0.5, i.e. x unchanged; DeiT: ImageNet's statistics);
  2. an optional bilinear resize to `interp_size` (torch semantics, align_corners=False; the
     official code resizes to 224 whenever the training resolution is below 224);
  3. the backbone, tapped at four depths (strides 4, 8, 16, 32 of its input);
  4. cross-channel mixing (CCM): a random 1x1 conv per tap to cout * (1, 2, 4, 8) channels;
  5. cross-scale mixing (CSM), from the deepest tap up: y3 = up(c3), y2 = up(y3 + c2),
     y1 = up(y2 + c1), y0 = up(y1 + c0), where up is a 2x bilinear upsampling with
     align_corners=True followed by a random 1x1 conv halving the channels (y0 keeps cout).
The four outputs y0..y3 have cout * (1, 1, 2, 4) channels at strides 2, 4, 8, 16 of the resized input.

Everything here is frozen: pretrained weights and random projections live in the 'frozen'
collection (never in 'params'), drawn once with PyTorch's default init distributions when the
discriminator is built, and saved with it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from gigajax import ops
from gigajax.models.projected.blocks import torch_default_uniform

@dataclasses.dataclass(frozen=True)
class Backbone:
    """A feature network the projected discriminator can use.

    name:      the timm name the official code uses.
    channels:  channels of the four taps.
    mean, std: the input normalisation applied to (x + 1) / 2.
    load:      () -> (flax module, numpy variables): the pretrained network; cheap after its first
               call (it reads the weights once per process), since every trace of D calls it.
    taps:      (module, variables, extra, x [N, H, W, 3]) -> four feature maps at strides 4, 8,
               16 and 32 of x; `extra` holds the variables of init_extra.
    init_extra: optional key -> variables of frozen random parts drawn when D is built (a ViT's
               readout heads).
    always_resize: resize the input to `interp_size` or 224 even when the D's interp_size is None
               (the official code does for ViTs: their taps assume a 224 input).
    """
    name: str
    channels: tuple[int, int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    load: Callable[[], tuple[nn.Module, Mapping[str, Any]]]
    taps: Callable[..., list]
    init_extra: Callable[[jax.Array], Mapping[str, Any]] | None = None
    always_resize: bool = False


@functools.lru_cache(maxsize=None)
def _efficientnet_load():
    # numpy weights, read once per process: D's init may run under jit, where a cached jax
    # array would be a tracer of that one trace.
    from gigajax.models.efficientnet_lite import EfficientNetLite0, efficientnet_lite0_variables
    return EfficientNetLite0(head=False), efficientnet_lite0_variables(head=False)


def _efficientnet_taps(module, variables, extra, x):
    del extra
    return module.apply(variables, x, method="taps")


BACKBONES: dict[str, Backbone] = {
    "tf_efficientnet_lite0": Backbone("tf_efficientnet_lite0", (24, 40, 112, 320), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
                                      _efficientnet_load, _efficientnet_taps),
}


def register_backbone(backbone: Backbone) -> None:
    """Make `backbone` available to `ProjectedDiscriminator(backbones=(name, ...))`."""
    BACKBONES[backbone.name] = backbone


def register_deit(path: str, name: str = "deit_base_distilled_patch16_224") -> Backbone:
    """Register the DeiT feature network of the official discriminator from a timm state-dict file
    the user supplies (.pth / .safetensors; see gigajax.models.vit.load_timm_vit). Its four taps
    are StyleGAN-XL's: blocks 2, 5, 8, 11 through frozen random readout heads."""
    from gigajax.models.vit import NORM_STATS, forward_vit, load_timm_vit, readout_from_name, vit_from_name

    @functools.lru_cache(maxsize=None)
    def load():
        return vit_from_name(name, num_classes=0), load_timm_vit(path, name, head=False)

    def taps(module, variables, extra, x):
        return forward_vit(module, variables, readout_from_name(name), extra, x)

    def init_extra(key):
        readout = readout_from_name(name)
        dim = vit_from_name(name).embed_dim
        probe = [jnp.zeros((1, 14, 14, dim), jnp.float32)] * 4
        return readout.init(key, probe)

    mean, std = NORM_STATS[name]
    backbone = Backbone(name, tuple(readout_from_name(name).features), tuple(mean), tuple(std), load, taps,
                        init_extra, always_resize=True)
    register_backbone(backbone)
    return backbone


def get_backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"unknown feature network {name!r}; available: {sorted(BACKBONES)} "
                         f"(a DeiT needs its timm weights: gigajax.models.projected.register_deit(path))")
    return BACKBONES[name]


def projection_channels(cout: int = 64, expand: bool = True) -> tuple[int, int, int, int]:
    """Channels of the four CSM outputs y0..y3."""
    return (cout, cout, cout * 2, cout * 4) if expand else (cout,) * 4


class _FrozenConv1x1(nn.Module):
    """1x1 conv with bias, PyTorch default init, in the 'frozen' collection: [N, H, W, in] -> [N, H, W, out]."""
    in_channels: int
    out_channels: int

    @nn.compact
    def __call__(self, x):
        init = torch_default_uniform(self.in_channels)
        kernel = self.variable("frozen", "kernel", lambda: init(self.make_rng("params"), (self.in_channels, self.out_channels)))
        bias = self.variable("frozen", "bias", lambda: init(self.make_rng("params"), (self.out_channels,)))
        return jnp.einsum("nhwc,co->nhwo", x, kernel.value.astype(x.dtype)) + bias.value.astype(x.dtype)


def _upsample2x_align_corners(x):
    return ops.resize_bilinear(x, (x.shape[1] * 2, x.shape[2] * 2), align_corners=True)


class RandomProjection(nn.Module):
    """CCM + CSM (module doc): four taps -> four mixed maps, frozen and random."""
    in_channels: tuple[int, int, int, int]
    cout: int = 64
    expand: bool = True

    @nn.compact
    def __call__(self, taps):
        mult = (1, 2, 4, 8) if self.expand else (1, 1, 1, 1)
        ccm = [_FrozenConv1x1(c, self.cout * m, name=f"layer{i}_ccm")(t)
               for i, (c, m, t) in enumerate(zip(self.in_channels, mult, taps))]
        out = [None] * 4
        y = None
        for i in (3, 2, 1, 0):
            z = ccm[i] if y is None else y + ccm[i]
            c_in = self.cout * mult[i]
            c_out = c_in // 2 if (self.expand and i > 0) else c_in
            y = _FrozenConv1x1(c_in, c_out, name=f"layer{i}_csm")(_upsample2x_align_corners(z))
            out[i] = y
        return out


class FeatureProjector(nn.Module):
    """One backbone with its normalisation, resize and random projection:
    x [N, H, W, 3] in [-1, 1] -> four maps (see the module doc). The pretrained weights are read
    into the 'frozen' collection when the module is initialised."""
    backbone: str = "tf_efficientnet_lite0"
    interp_size: int | None = 224
    cout: int = 64
    expand: bool = True

    @nn.compact
    def __call__(self, x):
        bb = get_backbone(self.backbone)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"FeatureProjector({self.backbone}): images must be [N, H, W, 3], got {tuple(x.shape)} "
                             f"(grayscale data: repeat the channel first)")
        module, pretrained = bb.load()
        weights = self.variable("frozen", "backbone", lambda: jax.tree.map(jnp.asarray, pretrained))
        extra = None
        if bb.init_extra is not None:
            extra = self.variable("frozen", "extra", lambda: bb.init_extra(self.make_rng("params"))).value
        x = ((x + 1) / 2 - jnp.asarray(bb.mean, x.dtype)) / jnp.asarray(bb.std, x.dtype)
        size = self.interp_size or (224 if bb.always_resize else None)
        if size:
            x = ops.resize_bilinear(x, size)
        taps = bb.taps(module, weights.value, extra, x)
        return RandomProjection(bb.channels, self.cout, self.expand, name="proj")(taps)


def nominal_resolutions(proj_im_res: int = 256) -> tuple[int, int, int, int]:
    """The resolutions the four mini-discriminators are sized for: CSM output strides 2, 4, 8, 16
    of a nominal `proj_im_res` input (the official code fixes it at 256, giving 128, 64, 32, 16,
    whatever the actual input size)."""
    return tuple(int(proj_im_res) // s for s in (2, 4, 8, 16))


__all__ = ["BACKBONES", "Backbone", "FeatureProjector", "RandomProjection",
           "get_backbone", "nominal_resolutions", "projection_channels", "register_backbone", "register_deit"]
