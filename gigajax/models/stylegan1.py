"""StyleGAN v1 (Karras et al. 2019, official NVlabs/stylegan G_style / G_mapping / G_synthesis).

Mapping: pixel-normed z (with an optional label embedding concatenated first) through
`mapping_layers` equalized dense layers with leaky ReLU (also after the last), learning-rate
multiplier 0.01, to w.

Synthesis: a learned constant [4, 4, nf(1)] (ones at init), then per resolution an up block
(nearest 2x upscale, 3x3 conv, [1, 2, 1] blur) and a 3x3 conv; every conv is followed by the
layer epilogue, in the official order: per-pixel noise times a learned per-channel strength
(0 at init), bias, leaky ReLU, instance norm, and the style (AdaIN):
x * (1 + y_s) + y_b with [y_s, y_b] = dense(w_i) (gain 1). num_layers = 2 * log2(res) - 2, one
w per layer; layer i runs at 4 * 2**(i // 2). Growth and fade-in are ProGAN's (levels, alpha,
nearest-upscaled toRGB of the level below; gigajax.models.progan), and every parameter exists at
the final resolution from init on.

The official G_synthesis switches keep their names and defaults, so the paper's Table 1
generators can be built: `const_input_layer` (False: the 4x4 input is dense(w_0) with gain
sqrt(2)/4 reshaped channel-major, the "traditional input" of configs A-C), `use_noise`,
`use_pixel_norm` (after the activation, before instance norm), `use_instance_norm` and
`use_styles`. A switched-off step creates no variables, as in the official graph.

The official up block for outputs >= 128 is a transposed convolution, which equals nearest
upscale + 3x3 conv with the kernel rotated by 180 degrees; from scratch the two are the same
model. Images are NHWC in [-1, 1], linear output.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gigajax.models.progan import (SQRT2, EqualizedConv, EqualizedDense, _check_level, _lrelu, blur121,
                                   check_resolution, lerp, max_level, num_features, pixel_norm, upscale2d)
from gigajax.models.stylegan2.layers import torch_lerp

NOISE_MODES = ("random", "const", "none")


def instance_norm(x, eps: float = 1e-8):
    """Per sample and channel over H, W: (x - mean) / sqrt(mean of the centred x**2 + eps)."""
    x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) + eps)


def layer_resolution(i: int) -> int:
    return 4 * 2 ** (i // 2)


class MappingNetwork(nn.Module):
    """z `[N, latent_size]`, c `[N, label_size]` -> w `[N, dlatent_size]`."""
    latent_size: int = 512
    label_size: int = 0
    dlatent_size: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    mapping_lrmul: float = 0.01
    normalize_latents: bool = True

    @nn.compact
    def __call__(self, z, c=None):
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise ValueError(f"StyleGAN mapping: z must be [N, {self.latent_size}], got {tuple(z.shape)}")
        x = z
        if self.label_size:
            if c is None or c.shape != (z.shape[0], self.label_size):
                raise ValueError(f"StyleGAN mapping: c must be one-hot [N, {self.label_size}], got "
                                 f"{None if c is None else tuple(c.shape)}")
            embed = self.param("label_embed", lambda k, s: jax.random.normal(k, s), (self.label_size, self.latent_size))
            x = jnp.concatenate([x, c @ embed], axis=1)
        if self.normalize_latents:
            x = pixel_norm(x)
        for i in range(self.mapping_layers):
            out = self.dlatent_size if i == self.mapping_layers - 1 else self.mapping_fmaps
            x = _lrelu(EqualizedDense(out, gain=SQRT2, lrmul=self.mapping_lrmul, name=f"dense{i}")(x))
        return x


class NoiseBuffer(nn.Module):
    """A stored N(0, 1) noise image `[res, res, 1]` (collection 'noise'), drawn at init."""
    res: int

    @nn.compact
    def __call__(self):
        return self.variable("noise", "value",
                             lambda: jax.random.normal(self.make_rng("params"), (self.res, self.res, 1))).value


class SynthesisNetwork(nn.Module):
    """ws `[N, num_layers, dlatent_size]` -> images `[N, 4*2**level, 4*2**level, num_channels]`.

    noise_mode: 'random' (fresh N(0, 1) per call from the 'noise' rng), 'const' (the stored
    'noise' buffers, drawn once at init) or 'none'. `init_all` touches every layer."""
    resolution: int
    num_channels: int = 3
    dlatent_size: int = 512
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    const_input_layer: bool = True
    use_noise: bool = True
    use_pixel_norm: bool = False
    use_instance_norm: bool = True
    use_styles: bool = True

    max_level = property(lambda self: max_level(self.resolution))

    @property
    def num_layers(self) -> int:
        return 2 * (self.max_level + 2) - 2

    def nf(self, stage):
        return num_features(stage, self.fmap_base, self.fmap_decay, self.fmap_max)

    def layer_channels(self, i):
        return self.nf(int(math.log2(layer_resolution(i))) - 1)

    def setup(self):
        check_resolution("StyleGAN synthesis", self.resolution)
        if self.const_input_layer:
            self.const = self.param("const", nn.initializers.ones, (4, 4, self.nf(1)))
        else:    # the ProGAN gain of the official 'Dense' input (its bias is the epilogue's)
            self.input_dense = EqualizedDense(16 * self.nf(1), gain=SQRT2 / 4, use_bias=False, name="input_dense")
        convs = {1: EqualizedConv(self.nf(1), 3, name="b4_conv")}
        for i in range(2, self.num_layers):
            res = layer_resolution(i)
            convs[i] = EqualizedConv(self.layer_channels(i), 3, name=f"b{res}_conv{i % 2}")
        self.convs = convs
        layers = range(self.num_layers)
        self.noise_strength = [self.param(f"noise_strength{i}", nn.initializers.zeros, (self.layer_channels(i),))
                               for i in layers] if self.use_noise else []
        self.bias = [self.param(f"bias{i}", nn.initializers.zeros, (self.layer_channels(i),)) for i in layers]
        self.style = [EqualizedDense(2 * self.layer_channels(i), gain=1.0, name=f"style{i}")
                      for i in layers] if self.use_styles else []
        self.torgb = [EqualizedConv(self.num_channels, 1, gain=1.0, name=f"torgb{4 * 2 ** l}")
                      for l in range(self.max_level + 1)]
        # noise_mode 'const' reads these, drawn once at init (the official noise{i} variables).
        self.noise_buffers = [NoiseBuffer(layer_resolution(i), name=f"noise{i}") for i in layers] if self.use_noise else []

    def _epilogue(self, x, i, w, noise_mode):
        n, h, wd, _ = x.shape
        if not self.use_noise:
            noise = None
        elif noise_mode == "random":
            noise = jax.random.normal(self.make_rng("noise"), (n, h, wd, 1), x.dtype)
        elif noise_mode == "const":
            noise = self.noise_buffers[i]()[None]
        else:
            noise = None
        if noise is not None:
            x = x + noise * self.noise_strength[i]
        x = _lrelu(x + self.bias[i])
        if self.use_pixel_norm:
            x = pixel_norm(x)
        if self.use_instance_norm:
            x = instance_norm(x)
        if not self.use_styles:
            return x
        style = self.style[i](w)
        c = x.shape[-1]
        return x * (style[:, None, None, :c] + 1) + style[:, None, None, c:]

    def _block(self, x, ws, level, noise_mode):
        if level == 0:
            if self.const_input_layer:
                x = jnp.broadcast_to(self.const[None], (ws.shape[0],) + self.const.shape)
            else:
                x = self.input_dense(ws[:, 0]).reshape(ws.shape[0], self.nf(1), 4, 4).transpose(0, 2, 3, 1)
            x = self._epilogue(x, 0, ws[:, 0], noise_mode)
            return self._epilogue(self.convs[1](x), 1, ws[:, 1], noise_mode)
        i = 2 * level
        x = self._epilogue(blur121(self.convs[i](upscale2d(x))), i, ws[:, i], noise_mode)
        return self._epilogue(self.convs[i + 1](x), i + 1, ws[:, i + 1], noise_mode)

    def _check(self, ws, noise_mode):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode={noise_mode!r}: expected one of {list(NOISE_MODES)}")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_layers, self.dlatent_size):
            raise ValueError(f"StyleGAN synthesis: ws must be [N, num_layers={self.num_layers}, "
                             f"{self.dlatent_size}], got {tuple(ws.shape)}")

    def __call__(self, ws, level: int, alpha=None, noise_mode: str = "random"):
        _check_level("StyleGAN synthesis", level, self.max_level)
        self._check(ws, noise_mode)
        x = None
        for l in range(level):
            x = self._block(x, ws, l, noise_mode)
        new = self.torgb[level](self._block(x, ws, level, noise_mode))
        if alpha is None or level == 0:
            return new
        return lerp(upscale2d(self.torgb[level - 1](x)), new, jnp.asarray(alpha, new.dtype))

    def init_all(self, ws):
        x = None
        for l in range(self.max_level + 1):
            x = self._block(x, ws, l, "const")
            self.torgb[l](x)
        return x


class Generator(nn.Module):
    """G_style: mapping, w broadcast to every layer, w_avg ('buffers' collection) and truncation.

    Call: (z `[N, latent_size]`, c `[N, label_size]`, level, alpha=None, truncation_psi=1.0,
    truncation_cutoff=8, noise_mode='random') -> images. `map` / `synthesis` are the halves
    (truncation happens in `map` only, as in the official G_style)."""
    resolution: int
    num_channels: int = 3
    latent_size: int = 512
    label_size: int = 0
    dlatent_size: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    mapping_lrmul: float = 0.01
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    const_input_layer: bool = True
    use_noise: bool = True
    use_pixel_norm: bool = False
    use_instance_norm: bool = True
    use_styles: bool = True

    def setup(self):
        self.mapping = MappingNetwork(self.latent_size, self.label_size, self.dlatent_size, self.mapping_layers,
                                      self.mapping_fmaps, self.mapping_lrmul)
        self.synthesis_net = SynthesisNetwork(self.resolution, self.num_channels, self.dlatent_size, self.fmap_base,
                                              self.fmap_decay, self.fmap_max, self.const_input_layer, self.use_noise,
                                              self.use_pixel_norm, self.use_instance_norm, self.use_styles)
        self.w_avg = self.variable("buffers", "w_avg", lambda: jnp.zeros((self.dlatent_size,), jnp.float32))

    max_level = property(lambda self: max_level(self.resolution))

    @property
    def num_layers(self) -> int:
        return 2 * (self.max_level + 2) - 2

    # The names gigajax.tools.Sampler reads (StyleGAN2's), so its grids, GIFs and projector work.
    z_dim = property(lambda self: self.latent_size)
    c_dim = property(lambda self: self.label_size)
    w_dim = property(lambda self: self.dlatent_size)
    num_ws = property(lambda self: self.num_layers)
    img_resolution = property(lambda self: self.resolution)
    img_channels = property(lambda self: self.num_channels)

    def _labels(self, c):
        return c if self.label_size else None      # [N, 0] from the tools means no labels

    def map(self, z, c=None, truncation_psi=1.0, truncation_cutoff: int | None = 8):
        """ws `[N, num_layers, dlatent_size]`; the ws below the cutoff (all when None) are pulled
        toward w_avg: lerp(w_avg, w, psi), exact at psi = 0 and 1. psi may be traced."""
        w = self.mapping(z, self._labels(c))
        ws = jnp.broadcast_to(w[:, None], (w.shape[0], self.num_layers, w.shape[1]))
        cutoff = self.num_layers if truncation_cutoff is None else int(truncation_cutoff)
        mask = (jnp.arange(self.num_layers) < cutoff)[None, :, None]
        return jnp.where(mask, torch_lerp(self.w_avg.value, ws, truncation_psi), ws)

    def map_train(self, z, c=None, w_avg_beta: float = 0.995):
        """Training's ws (no truncation), updating w_avg <- lerp(batch mean of w, w_avg, beta) as
        every official training graph does (call with mutable=['buffers'])."""
        w = self.mapping(z, self._labels(c))
        self.w_avg.value = lerp(jnp.mean(w, axis=0), self.w_avg.value, w_avg_beta)
        return jnp.broadcast_to(w[:, None], (w.shape[0], self.num_layers, w.shape[1]))

    def synthesis(self, ws, level: int, alpha=None, noise_mode: str = "random"):
        return self.synthesis_net(ws, level, alpha, noise_mode)

    def synthesize(self, ws, noise_mode: str = "const"):
        """The grown network's images (final level, no fade), as gigajax.tools calls it."""
        return self.synthesis_net(ws, self.synthesis_net.max_level, None, noise_mode)

    def __call__(self, z, c, level: int, alpha=None, truncation_psi=1.0, truncation_cutoff: int | None = 8,
                 noise_mode: str = "random"):
        return self.synthesis(self.map(z, c, truncation_psi, truncation_cutoff), level, alpha, noise_mode)

    def init_all(self, z, c=None):
        return self.synthesis_net.init_all(self.map(z, c, truncation_psi=1.0))
