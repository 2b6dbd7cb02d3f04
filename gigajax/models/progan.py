"""ProGAN (Karras et al. 2018, "Progressive Growing of GANs"): the paper's G and D, which grow
together from 4x4, with equalized learning rate, pixel norm and minibatch stddev.

Levels: level l runs at resolution 4 * 2**l; `max_level` is the final one. Every parameter of every
level exists from init on (shapes fixed at the final resolution), so a run's train state keeps one
layout while the networks grow; a call names its level statically, and each (level, fading) pair is
its own compiled program.

Fade-in (`alpha`, a traced scalar in [0, 1], or None for a stable level): G's new block at level l
enters as toRGB_l(block_l(x)) blended with the nearest-upscaled toRGB_{l-1}(x) of the level
below; D's new block enters as block_l(fromRGB_l(img)) blended with fromRGB_{l-1} of the
2x2-average-pooled image. alpha = 1 is the new path alone.

The official layers fuse the 2x resampling into their convolutions (`fused_scale`, its default):
G's upscale-conv is exactly a nearest 2x upscale followed by the 3x3 conv, and D's conv-downscale
exactly the 3x3 conv followed by a 2x2 average, with bias and activation after the pooling.
They are written here in the unfused form, which computes the same values.

Equalized learning rate: weights are drawn N(0, 1) and scaled at run time by gain / sqrt(fan_in)
(He's constant), gain sqrt(2) except toRGB and D's output layer (1) and G's first dense layer
(sqrt(2) / 4, as the official code, to match the original Theano model); biases start at 0 and
are added after the scaled weights, before the activation (leaky ReLU 0.2).

Images are NHWC in [-1, 1]; G's output is linear (no tanh).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gigajax import ops
from gigajax.ops.conv2d import conv2d
from gigajax.models.stylegan2.discriminator import MinibatchStdLayer
from gigajax.models.stylegan2.layers import normalize_2nd_moment

SQRT2 = math.sqrt(2.0)
_BLUR121 = ops.setup_filter([1, 2, 1])


def num_features(stage: int, fmap_base: int = 8192, fmap_decay: float = 1.0, fmap_max: int = 512) -> int:
    """The paper's channel count nf(stage) = min(fmap_base / 2**(stage * fmap_decay), fmap_max).
    Block res_log2 = r uses nf(r - 1) channels (G) and maps nf(r - 1) -> nf(r - 2) (D)."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def max_level(resolution: int) -> int:
    """The level of `resolution`: log2(resolution) - 2 (4x4 is level 0)."""
    return int(round(math.log2(resolution))) - 2


def check_resolution(owner: str, resolution: int) -> None:
    if resolution < 4 or 2 ** (max_level(resolution) + 2) != resolution:
        raise ValueError(f"{owner}: resolution must be a power of 2 >= 4, got {resolution}")


def pixel_norm(x, eps: float = 1e-8):
    """x / sqrt(mean over channels of x**2 + eps), per pixel: x `[..., C]`."""
    return normalize_2nd_moment(x, axis=-1, eps=eps)


def upscale2d(x, factor: int = 2):
    """Nearest-neighbour upscaling: `[N, H, W, C]` -> `[N, H*f, W*f, C]`."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def downscale2d(x, factor: int = 2):
    """Box (average) downscaling: `[N, H, W, C]` -> `[N, H/f, W/f, C]`; H, W multiples of f."""
    n, h, w, c = x.shape
    if h % factor or w % factor:
        raise ValueError(f"downscale2d: {h}x{w} is not a multiple of {factor}")
    return x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def blur121(x):
    """StyleGAN v1's blur: the [1, 2, 1] x [1, 2, 1] / 16 filter per channel, zero-padded to the
    same size: `[N, H, W, C]` -> `[N, H, W, C]`."""
    return ops.filter2d(x, _BLUR121)


def lerp(a, b, t):
    """a + (b - a) * t: t = 0 gives a, t = 1 gives b."""
    return a + (b - a) * t


def _normal(key, shape, dtype=jnp.float32):
    return jax.random.normal(key, shape, dtype)


class EqualizedDense(nn.Module):
    """x `[N, in]` -> x @ (weight * gain * lrmul / sqrt(in)) + bias * lrmul, `[N, features]`.
    weight `[in, features]` drawn N(0, 1 / lrmul**2) (StyleGAN's learning-rate multiplier: the
    mapping network's 0.01 makes its effective step 100x smaller), bias 0."""
    features: int
    gain: float = SQRT2
    use_bias: bool = True
    lrmul: float = 1.0

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        w = self.param("weight", lambda k, s: _normal(k, s) / self.lrmul, (fan_in, self.features))
        y = x @ (w * (self.gain * self.lrmul / math.sqrt(fan_in)))
        if not self.use_bias:
            return y
        return y + self.param("bias", nn.initializers.zeros, (self.features,)) * self.lrmul


def _equalized_conv(x, w, gain):
    """Same-padded correlation of x `[N, H, W, I]` with w `[k, k, I, O]` * gain / sqrt(k*k*I)."""
    k, p = w.shape[0], w.shape[0] // 2
    return conv2d(x, w * (gain / math.sqrt(k * k * w.shape[2])), padding=((p, p), (p, p)))


class EqualizedConv(nn.Module):
    """Same-padded k x k correlation with runtime scale gain / sqrt(k*k*in), plus bias:
    x `[N, H, W, in]` -> `[N, H, W, features]`; `down=True` puts a 2x2 average between the
    correlation and the bias (the official fused conv-downscale) -> `[N, H/2, W/2, features]`.
    weight `[k, k, in, features]` (HWIO), bias `[features]`."""
    features: int
    kernel: int = 3
    gain: float = SQRT2
    down: bool = False

    @nn.compact
    def __call__(self, x):
        w = self.param("weight", _normal, (self.kernel, self.kernel, x.shape[-1], self.features))
        y = _equalized_conv(x, w, self.gain)
        if self.down:
            y = downscale2d(y)
        return y + self.param("bias", nn.initializers.zeros, (self.features,))


def _lrelu(x):
    return jnp.where(x >= 0, x, 0.2 * x)


def _check_level(owner, level, max_level):
    if not isinstance(level, (int, np.integer)) or not 0 <= int(level) <= max_level:
        raise ValueError(f"{owner}: level must be a Python int in [0, {max_level}] (4x4 .. "
                         f"{4 * 2 ** max_level}x{4 * 2 ** max_level}), got {level!r}")


class Generator(nn.Module):
    """ProGAN's G (the paper's Table 2, official G_paper).

    resolution:       final output size (a power of 2, >= 4); max_level = log2(resolution) - 2.
    num_channels:     image channels.
    latent_size:      z size (512 in the paper).
    normalize_latents: pixel-norm z first (the official default).
    use_pixelnorm:    pixel norm after every conv's activation.

    Call: (z `[N, latent_size]`, level, alpha=None) -> images `[N, 4*2**level, 4*2**level,
    num_channels]`. `init_all` touches every layer (use it for `init`)."""
    resolution: int
    num_channels: int = 3
    latent_size: int = 512
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    normalize_latents: bool = True
    use_pixelnorm: bool = True
    pixelnorm_epsilon: float = 1e-8

    max_level = property(lambda self: max_level(self.resolution))

    def nf(self, stage):
        return num_features(stage, self.fmap_base, self.fmap_decay, self.fmap_max)

    def setup(self):
        check_resolution("ProGAN Generator", self.resolution)
        # The official 4x4 dense layer adds its bias per channel, after the reshape to [nf, 4, 4].
        self.dense = EqualizedDense(self.nf(1) * 16, gain=SQRT2 / 4, use_bias=False, name="b4_dense")
        self.dense_bias = self.param("b4_dense_bias", nn.initializers.zeros, (self.nf(1),))
        convs = {"b4_conv": EqualizedConv(self.nf(1), 3, name="b4_conv")}
        for level in range(1, self.max_level + 1):
            r = level + 2
            res = 2 ** r
            convs[f"b{res}_conv0"] = EqualizedConv(self.nf(r - 1), 3, name=f"b{res}_conv0")
            convs[f"b{res}_conv1"] = EqualizedConv(self.nf(r - 1), 3, name=f"b{res}_conv1")
        self.convs = convs
        self.torgb = [EqualizedConv(self.num_channels, 1, gain=1.0, name=f"torgb{4 * 2 ** l}")
                      for l in range(self.max_level + 1)]

    def _pn(self, x):
        return pixel_norm(x, self.pixelnorm_epsilon) if self.use_pixelnorm else x

    def _block(self, x, level):
        """level 0: z `[N, latent]` -> `[N, 4, 4, nf(1)]`; level l: `[N, H, W, .]` -> `[N, 2H, 2W, nf(l+1)]`."""
        if level == 0:
            if self.normalize_latents:
                x = pixel_norm(x, self.pixelnorm_epsilon)
            x = self.dense(x)
            # The official layout is channels-first: the dense output reads as [nf, 4, 4].
            x = x.reshape(x.shape[0], self.nf(1), 4, 4).transpose(0, 2, 3, 1)
            x = self._pn(_lrelu(x + self.dense_bias))
            return self._pn(_lrelu(self.convs["b4_conv"](x)))
        res = 4 * 2 ** level
        x = self._pn(_lrelu(self.convs[f"b{res}_conv0"](upscale2d(x))))
        return self._pn(_lrelu(self.convs[f"b{res}_conv1"](x)))

    def __call__(self, z, level: int, alpha=None):
        _check_level("ProGAN Generator", level, self.max_level)
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise ValueError(f"ProGAN Generator: z must be [N, latent_size={self.latent_size}], got {z.shape}")
        x = z
        for l in range(level):
            x = self._block(x, l)
        new = self.torgb[level](self._block(x, level))
        if alpha is None or level == 0:
            return new
        old = upscale2d(self.torgb[level - 1](x))
        return lerp(old, new, jnp.asarray(alpha, new.dtype))

    def init_all(self, z):
        """Every block and every toRGB, so `init` creates the whole final-resolution network."""
        x, out = z, None
        for l in range(self.max_level + 1):
            x = self._block(x, l)
            out = self.torgb[l](x)
        return out


class Discriminator(nn.Module):
    """ProGAN's D (official D_paper): fromRGB_l, blocks that halve the resolution, and at 4x4
    minibatch stddev (group size `mbstd_group_size`, one feature map), a 3x3 conv, two dense
    layers and a linear score.

    Call: (img `[N, 4*2**level, 4*2**level, num_channels]`, level, alpha=None, c=None) -> scores
    `[N]`; c: one-hot labels `[N, label_size]` when label_size > 0.
    `init_all(img at the final resolution)` touches every layer."""
    resolution: int
    num_channels: int = 3
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    mbstd_group_size: int = 4
    blur: bool = False         # StyleGAN v1's D_basic: a [1, 2, 1] blur before each down conv
    label_size: int = 0        # StyleGAN v1's label switch: the score is the output of the given class

    max_level = property(lambda self: max_level(self.resolution))

    def nf(self, stage):
        return num_features(stage, self.fmap_base, self.fmap_decay, self.fmap_max)

    def setup(self):
        check_resolution("ProGAN Discriminator", self.resolution)
        self.fromrgb = [EqualizedConv(self.nf(l + 1), 1, name=f"fromrgb{4 * 2 ** l}")
                        for l in range(self.max_level + 1)]
        convs = {}
        for level in range(1, self.max_level + 1):
            r = level + 2
            res = 2 ** r
            convs[f"b{res}_conv0"] = EqualizedConv(self.nf(r - 1), 3, name=f"b{res}_conv0")
            convs[f"b{res}_conv1_down"] = EqualizedConv(self.nf(r - 2), 3, down=True, name=f"b{res}_conv1_down")
        convs["b4_conv"] = EqualizedConv(self.nf(1), 3, name="b4_conv")
        self.convs = convs
        self.dense0 = EqualizedDense(self.nf(0), name="b4_dense0")
        self.dense1 = EqualizedDense(max(self.label_size, 1), gain=1.0, name="b4_dense1")
        self.mbstd = MinibatchStdLayer(group_size=self.mbstd_group_size, num_channels=1) if self.mbstd_group_size > 1 else None

    def _block(self, x, level):
        """level l >= 1: `[N, H, W, nf(l+1)]` -> `[N, H/2, W/2, nf(l)]`; level 0: `[N, 4, 4, nf(1)]` -> `[N]`."""
        if level == 0:
            if self.mbstd is not None:
                x = self.mbstd(x)
            x = _lrelu(self.convs["b4_conv"](x))
            # Flatten channels-first, as the official dense layer reads its input.
            x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)
            x = _lrelu(self.dense0(x))
            return self.dense1(x)
        res = 4 * 2 ** level
        x = _lrelu(self.convs[f"b{res}_conv0"](x))
        return _lrelu(self.convs[f"b{res}_conv1_down"](blur121(x) if self.blur else x))

    def __call__(self, img, level: int, alpha=None, c=None):
        _check_level("ProGAN Discriminator", level, self.max_level)
        if self.label_size and (c is None or c.shape != (img.shape[0], self.label_size)):
            raise ValueError(f"Discriminator with label_size={self.label_size} needs one-hot labels "
                             f"[{img.shape[0]}, {self.label_size}], got {None if c is None else tuple(c.shape)}")
        res = 4 * 2 ** level
        if img.ndim != 4 or img.shape[1:] != (res, res, self.num_channels):
            raise ValueError(f"ProGAN Discriminator: level {level} takes images [N, {res}, {res}, "
                             f"{self.num_channels}], got {tuple(img.shape)}")
        x = _lrelu(self.fromrgb[level](img))
        if level > 0:
            x = self._block(x, level)
            if alpha is not None:
                old = _lrelu(self.fromrgb[level - 1](downscale2d(img)))
                x = lerp(old, x, jnp.asarray(alpha, x.dtype))
            for l in range(level - 1, 0, -1):
                x = self._block(x, l)
        out = self._block(x, 0)
        return jnp.sum(out * c, axis=1) if self.label_size else out[:, 0]

    def init_all(self, img):
        """Every fromRGB (on the pooled image) and every block, from the final resolution down."""
        for l in range(self.max_level + 1):
            self.fromrgb[l](downscale2d(img, 2 ** (self.max_level - l)) if l < self.max_level else img)
        c = jnp.zeros((img.shape[0], self.label_size)) if self.label_size else None
        return self(img, self.max_level, c=c)
