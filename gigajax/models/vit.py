"""Vision Transformer / DeiT (timm 0.4.12 semantics) and StyleGAN-XL's ViT feature readout.

StyleGAN-XL (autonomousvision/stylegan-xl) uses two timm ViTs:
  - `deit_base_distilled_patch16_224` as the second frozen feature network of its projected
    discriminator (feature_networks/vit.py, `forward_vit` / `forward_flex`, built by
    feature_networks/pretrained_builder.py `_make_vit`);
  - `deit_small_distilled_patch16_224` as the ImageNet classifier of classifier guidance
    (training/loss.py: `timm.create_model(cls_model, pretrained=True).eval()` behind an
    `Interpolate(224)`, so it always sees 224x224 and returns the eval-mode distilled logits).
This module is a pure flax.linen port of that network, a loader for timm state-dict files that
needs no torch, and the frozen random readout heads of the discriminator.

Architecture (`VisionTransformer`, input x float [N, H, W, 3], NHWC RGB, already normalised by the
caller; for the DeiT weights with ImageNet mean/std, see `NORM_STATS`):
  patch embed: a p x p conv with stride p (p = patch_size = 16), 3 -> D channels, with bias, no
      padding: gh = H // p, gw = W // p patches (rows/columns past gh*p / gw*p are ignored, as the
      torch conv does), flattened row-major to L = gh * gw tokens [N, L, D].
  prefix tokens: P = 2 ([cls, dist]) when distilled, else P = 1 ([cls]); prepended -> [N, P + L, D].
  position embedding pos_embed [1, P + G*G, D], G = img_size // p (14 for 224/16), added to the
      tokens. Its first P rows go to the prefix tokens unchanged; its G x G grid part is resized to
      gh x gw when (gh, gw) != (G, G), bilinearly with align_corners=False and no antialiasing,
      exactly StyleGAN-XL's `_resize_pos_embed` (`F.interpolate(grid, (gh, gw), 'bilinear')`,
      which `forward_flex` applies at every input size; at (G, G) it is the identity). timm's own
      forward refuses other sizes in 0.4.12 (and uses bicubic resampling in timm >= 0.9), so this
      is the StyleGAN-XL behaviour, not timm's.
  depth pre-LN transformer blocks (all LayerNorms eps 1e-6, over the last axis):
      x = x + proj(attention(qkv(LN1(x))))  qkv: Dense D -> 3D with bias, split as
                                             [3, heads, D / heads]; scores (q @ k^T) * hd**-0.5,
                                             softmax over keys; proj: Dense D -> D
      x = x + fc2(gelu(fc1(LN2(x))))        fc1: D -> mlp_ratio * D, exact (erf) GELU, fc2 back
      The OUTPUT of block i (the residual stream, before the final norm) is what StyleGAN-XL's
      forward hooks read: `block_outputs` returns them as [N, P + L, D].
  final norm LN (eps 1e-6) -> `features` [N, P + L, D] (what `forward_flex` returns).
  head: logits [N, num_classes] = head(norm(x)[:, 0]) for a plain ViT; for a distilled DeiT in
      eval mode (head(norm(x)[:, 0]) + head_dist(norm(x)[:, 1])) / 2 (timm's eval forward; its
      train-mode pair is never what StyleGAN-XL uses). With num_classes = 0 there is no head and
      `__call__` returns the pre-logits [N, D] (cls, or the mean of cls and dist when distilled).

StyleGAN-XL's discriminator taps (`taps`, `TAP_HOOKS` = (2, 5, 8, 11) for the 12-block models):
the outputs of blocks 2, 5, 8, 11, prefix tokens dropped (its `Slice(start_index=2)` for DeiT),
reshaped row-major to maps [N, gh, gw, D] ([N, 14, 14, 768] for deit_base at 224). Then
`ViTReadout` (random, frozen; see its docstring) turns them into
[N, 4gh, 4gw, f0], [N, 2gh, 2gw, f1], [N, gh, gw, f2], [N, ceil(gh/2), ceil(gw/2), f3]
(f = (96, 192, 384, 768) for deit_base: 56, 28, 14, 7 pixels at 224). StyleGAN-XL always feeds
its ViTs 224x224 images (discriminator: `F.interpolate(x, 224, 'bilinear')` for every backbone in
VITS; classifier: `Interpolate(224)`), after Normalize with the ImageNet mean/std.

Variables of `VisionTransformer` (timm name in brackets; `load_timm_vit` / `variables_from_timm`
read timm's, `timm_state_dict` writes them back; D = embed_dim, M = mlp_ratio * D, C = num_classes):
    {'params': {
        'patch_embed': {'kernel': [p, p, 3, D] (HWIO), 'bias': [D]},   [patch_embed.proj.weight OIHW, .bias]
        'cls_token': [1, 1, D],                                       [cls_token]
        'dist_token': [1, 1, D]            (distilled only),          [dist_token]
        'pos_embed': [1, P + G*G, D],                                 [pos_embed]
        'blocks_i' (i < depth): {                                     [blocks.i.*]
            'norm1': {'scale': [D], 'bias': [D]},                     [norm1.weight, norm1.bias]
            'attn': {'qkv': {'kernel': [D, 3D], 'bias': [3D]},        [attn.qkv.weight (transposed), .bias]
                     'proj': {'kernel': [D, D], 'bias': [D]}},        [attn.proj.*]
            'norm2': {'scale': [D], 'bias': [D]},                     [norm2.*]
            'mlp': {'fc1': {'kernel': [D, M], 'bias': [M]},           [mlp.fc1.*]
                    'fc2': {'kernel': [M, D], 'bias': [D]}}},         [mlp.fc2.*]
        'norm': {'scale': [D], 'bias': [D]},                          [norm.*]
        'head': {'kernel': [D, C], 'bias': [C]}       (C > 0),        [head.*]
        'head_dist': {'kernel': [D, C], 'bias': [C]}  (C > 0, distilled)}}  [head_dist.*]

    >>> from gigajax.models.vit import vit_from_name, load_timm_vit, ViTReadout, readout_from_name
    >>> vit = vit_from_name("deit_base_distilled_patch16_224")
    >>> variables = load_timm_vit("deit_base_distilled_patch16_224-df68dfff.pth", vit)
    >>> taps = vit.apply(variables, x, method="taps")             # 4 x [N, 14, 14, 768]
    >>> readout = readout_from_name("deit_base_distilled_patch16_224")
    >>> rvars = readout.init(jax.random.key(0), taps)              # PyTorch-default random init
    >>> f0, f1, f2, f3 = readout.apply(rvars, taps)                # 56, 28, 14, 7 pixels
    >>> logits = vit_from_name("deit_small_distilled_patch16_224").apply(small_vars, x)  # [N, 1000]

All of it is frozen by design (no dropout, no batch statistics): `apply` is a pure function of
(variables, x) and gradients flow to x. Keep these variables out of the optimiser.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gigajax import ops
from gigajax.models.torch_init import torch_default_uniform

__all__ = [
    "VisionTransformer", "ViTReadout", "DEIT_CONFIGS", "NORM_STATS", "READOUT_FEATURES", "TAP_HOOKS",
    "IMAGENET_MEAN", "IMAGENET_STD", "LN_EPS", "vit_from_name", "readout_from_name",
    "resize_pos_embed", "tokens_to_map", "load_timm_vit", "variables_from_timm", "timm_state_dict",
    "readout_variables_from_state_dict", "readout_state_dict", "torch_default_uniform", "forward_vit",
]

LN_EPS = 1e-6
TAP_HOOKS = (2, 5, 8, 11)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

# timm 0.4.12 constructor arguments (all: patch 16, img 224, mlp_ratio 4, qkv_bias, LN eps 1e-6,
# 1000 classes). The non-distilled ones differ only in the missing dist token / head_dist.
DEIT_CONFIGS: dict[str, dict[str, Any]] = {
    "deit_tiny_patch16_224": dict(embed_dim=192, depth=12, num_heads=3),
    "deit_small_patch16_224": dict(embed_dim=384, depth=12, num_heads=6),
    "deit_base_patch16_224": dict(embed_dim=768, depth=12, num_heads=12),
    "deit_tiny_distilled_patch16_224": dict(embed_dim=192, depth=12, num_heads=3, distilled=True),
    "deit_small_distilled_patch16_224": dict(embed_dim=384, depth=12, num_heads=6, distilled=True),
    "deit_base_distilled_patch16_224": dict(embed_dim=768, depth=12, num_heads=12, distilled=True),
    "vit_base_patch16_224": dict(embed_dim=768, depth=12, num_heads=12),
}
# Input normalisation the weights expect (StyleGAN-XL's get_backbone_normstats), as (mean, std).
NORM_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    name: (_INCEPTION if name.startswith("vit_") else (IMAGENET_MEAN, IMAGENET_STD)) for name in DEIT_CONFIGS}
# StyleGAN-XL `_make_vit`: readout channels per tap, by the width in the model's name.
READOUT_FEATURES: dict[str, tuple[int, int, int, int]] = {
    name: {192: (24, 48, 96, 192), 384: (48, 96, 192, 384), 768: (96, 192, 384, 768)}[cfg["embed_dim"]]
    for name, cfg in DEIT_CONFIGS.items()}


def _normal02(std: float = 0.02):
    # timm: trunc_normal_(std=.02) for tokens, pos_embed and Linear weights, with bounds +-2, i.e.
    # no real truncation at this std (and jax's truncated_normal compiles slowly on CPU). Only a
    # default: real use loads weights.
    return nn.initializers.normal(stddev=std)


def _f32(x):
    return x.astype(jnp.float32)


class _LayerNorm(nn.Module):
    """LayerNorm over the last axis, statistics in float32: [..., D] -> [..., D] float32.
    params 'scale', 'bias' [D] (torch weight, bias). Biased variance, eps inside the sqrt."""
    eps: float = LN_EPS

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (d,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (d,), jnp.float32)
        x = _f32(x)
        mean = jnp.mean(x, axis=-1, keepdims=True)
        xc = x - mean
        var = jnp.mean(xc * xc, axis=-1, keepdims=True)
        return xc * jax.lax.rsqrt(var + self.eps) * scale + bias


def _dense(features: int, name: str | None, dtype, precision) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, param_dtype=jnp.float32, precision=precision,
                    kernel_init=_normal02(), bias_init=nn.initializers.zeros, name=name)


class _Attention(nn.Module):
    """Multi-head self-attention: [N, T, D] -> [N, T, D]. params qkv [D, 3D] (+bias), proj [D, D]."""
    num_heads: int
    qkv_bias: bool = True
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        n, t, d = x.shape
        h = self.num_heads
        hd = d // h
        qkv = nn.Dense(3 * d, use_bias=self.qkv_bias, dtype=self.dtype, param_dtype=jnp.float32,
                       precision=self.precision, kernel_init=_normal02(), name="qkv")(x)
        qkv = qkv.reshape(n, t, 3, h, hd)      # timm: reshape(B, N, 3, heads, hd)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]                       # [N, T, h, hd]
        s = jnp.einsum("nqhd,nkhd->nhqk", q, k, precision=self.precision)
        s = _f32(s) * (hd ** -0.5)             # scale after the product, as timm 0.4.12
        p = jax.nn.softmax(s, axis=-1).astype(self.dtype)
        o = jnp.einsum("nhqk,nkhd->nqhd", p, v, precision=self.precision).reshape(n, t, d)
        return _dense(d, "proj", self.dtype, self.precision)(o)


class _Mlp(nn.Module):
    """fc1 D -> hidden, exact GELU, fc2 hidden -> D: [N, T, D] -> [N, T, D]."""
    hidden: int
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        y = _dense(self.hidden, "fc1", self.dtype, self.precision)(x)
        y = jax.nn.gelu(y, approximate=False)
        return _dense(x.shape[-1], "fc2", self.dtype, self.precision)(y)


class _Block(nn.Module):
    """Pre-LN transformer block: x [N, T, D] float32 -> [N, T, D] float32 (the residual stream)."""
    num_heads: int
    mlp_hidden: int
    qkv_bias: bool = True
    eps: float = LN_EPS
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        y = _LayerNorm(self.eps, name="norm1")(x).astype(self.dtype)
        x = x + _f32(_Attention(self.num_heads, self.qkv_bias, self.dtype, self.precision, name="attn")(y))
        y = _LayerNorm(self.eps, name="norm2")(x).astype(self.dtype)
        return x + _f32(_Mlp(self.mlp_hidden, self.dtype, self.precision, name="mlp")(y))


class _PatchEmbed(nn.Module):
    """p x p, stride p conv with bias: x [N, H, W, C] -> [N, H // p, W // p, D].
    params 'kernel' [p, p, C, D] (HWIO), 'bias' [D]. Written as one matmul over patches."""
    embed_dim: int
    patch_size: int
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        p = self.patch_size
        n, hh, ww, c = x.shape
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (p, p, c, self.embed_dim), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.embed_dim,), jnp.float32)
        gh, gw = hh // p, ww // p
        x = x[:, :gh * p, :gw * p].astype(self.dtype).reshape(n, gh, p, gw, p, c)
        y = jnp.einsum("nhawbc,abcd->nhwd", x, kernel.astype(self.dtype), precision=self.precision)
        return y + bias.astype(y.dtype)


def resize_pos_embed(pos_embed: jax.Array, num_prefix: int, grid: tuple[int, int]) -> jax.Array:
    """StyleGAN-XL's `_resize_pos_embed`: pos_embed [1, P + G*G, D] -> [1, P + gh*gw, D].

    The first `num_prefix` (P) rows are kept; the G x G grid rows (row-major) are resized to
    grid = (gh, gw) with `F.interpolate(mode='bilinear', align_corners=False)` semantics (no
    antialiasing, also when shrinking). Unchanged when (gh, gw) == (G, G)."""
    tok, g = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    n_grid = g.shape[1]
    g0 = math.isqrt(n_grid)
    if g0 * g0 != n_grid:
        raise ValueError(f"pos_embed grid part has {n_grid} rows, not a square")
    gh, gw = grid
    if (gh, gw) == (g0, g0):
        return pos_embed
    g = ops.resize_bilinear(g.reshape(g.shape[0], g0, g0, g.shape[-1]), (gh, gw))
    return jnp.concatenate([tok, g.reshape(g.shape[0], gh * gw, g.shape[-1])], axis=1)


def tokens_to_map(tokens: jax.Array, grid: tuple[int, int], num_prefix: int) -> jax.Array:
    """StyleGAN-XL's readout 'ignore': tokens [N, P + gh*gw, D] -> map [N, gh, gw, D]
    (prefix tokens dropped, patch tokens unflattened row-major)."""
    n, t, d = tokens.shape
    gh, gw = grid
    if t != num_prefix + gh * gw:
        raise ValueError(f"tokens_to_map: {t} tokens do not match {num_prefix} prefix + {gh}x{gw} grid")
    return tokens[:, num_prefix:].reshape(n, gh, gw, d)


class VisionTransformer(nn.Module):
    """ViT / DeiT (timm 0.4.12 `VisionTransformer`), frozen inference forward.

    x: float [N, H, W, 3] NHWC, normalised by the caller (H, W >= patch_size; any size: the
    position embedding grid is resized as StyleGAN-XL's `forward_flex` does). With
    P = 2 if distilled else 1, gh = H // patch_size, gw = W // patch_size, T = P + gh * gw:

      __call__(x)          -> logits [N, num_classes] (distilled: mean of the two heads, timm's
                              eval forward); with num_classes == 0 the pre-logits [N, D].
      __call__(x, hooks)   -> (block_outputs(x, hooks), logits) in one pass.
      block_outputs(x, hooks) -> [outputs of the blocks in `hooks`, each [N, T, D] float32] (the
                              residual stream, what forward hooks on timm's `blocks[i]` see);
                              only blocks up to max(hooks) are run.
      taps(x, hooks=TAP_HOOKS) -> those outputs without prefix tokens, as maps [N, gh, gw, D]
                              (StyleGAN-XL's discriminator features before the readout heads).
      features(x)          -> the final-normed tokens [N, T, D] (`forward_flex`'s return value).

    Call the methods with `module.apply(variables, x, ..., method="taps")`. Initialise with
    `module.init(key, x)` (the `__call__` path creates every variable).

    embed_dim, depth, num_heads, mlp_ratio, patch_size, qkv_bias, distilled, num_classes: timm's
        constructor arguments. img_size: the training resolution; it fixes the pos_embed grid
        G = img_size // patch_size. eps: LayerNorm epsilon (1e-6 in timm's ViTs).
    dtype: compute dtype of the matmuls (parameters, LayerNorm, softmax and the residual stream
        stay float32). precision: of every matmul (None: backend default; pass
        jax.lax.Precision.HIGHEST on GPUs/TPUs whose default uses TF32/bf16 passes).
    """
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    img_size: int = 224
    qkv_bias: bool = True
    distilled: bool = False
    num_classes: int = 1000
    eps: float = LN_EPS
    dtype: Any = jnp.float32
    precision: Any = None

    @property
    def num_prefix_tokens(self) -> int:
        return 2 if self.distilled else 1

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    def setup(self):
        if self.embed_dim % self.num_heads:
            raise ValueError(f"VisionTransformer: embed_dim={self.embed_dim} is not divisible by "
                             f"num_heads={self.num_heads}")
        d = self.embed_dim
        self.patch_embed = _PatchEmbed(d, self.patch_size, self.dtype, self.precision)
        self.cls_token = self.param("cls_token", _normal02(), (1, 1, d), jnp.float32)
        if self.distilled:
            self.dist_token = self.param("dist_token", _normal02(), (1, 1, d), jnp.float32)
        self.pos_embed = self.param("pos_embed", _normal02(),
                                    (1, self.num_prefix_tokens + self.grid_size ** 2, d), jnp.float32)
        # a list attribute: flax names its members blocks_0, blocks_1, ...
        self.blocks = [_Block(self.num_heads, int(d * self.mlp_ratio), self.qkv_bias, self.eps,
                              self.dtype, self.precision) for i in range(self.depth)]
        self.norm = _LayerNorm(self.eps)
        if self.num_classes > 0:
            self.head = _dense(self.num_classes, None, jnp.float32, self.precision)
            if self.distilled:
                self.head_dist = _dense(self.num_classes, None, jnp.float32, self.precision)

    def _check(self, x):
        shape = tuple(getattr(x, "shape", ()))
        p = self.patch_size
        if len(shape) != 4 or shape[-1] != 3 or min(shape[1:3]) < p:
            hint = (" (this looks like NCHW; gigajax is NHWC: transpose with x.transpose(0, 2, 3, 1))"
                    if len(shape) == 4 and shape[1] == 3 and shape[-1] != 3 else "")
            raise ValueError(f"VisionTransformer expects x of shape [N, H, W, 3] (NHWC RGB, H, W >= "
                             f"patch_size={p}); got shape {shape}{hint}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"VisionTransformer expects normalised float images; got dtype {x.dtype}")

    def _embed(self, x):
        """x [N, H, W, 3] -> (tokens [N, T, D] float32, (gh, gw))."""
        self._check(x)
        y = _f32(self.patch_embed(x))
        n, gh, gw, d = y.shape
        prefix = [jnp.broadcast_to(self.cls_token, (n, 1, d))]
        if self.distilled:
            prefix.append(jnp.broadcast_to(self.dist_token, (n, 1, d)))
        tokens = jnp.concatenate(prefix + [y.reshape(n, gh * gw, d)], axis=1)
        return tokens + resize_pos_embed(self.pos_embed, self.num_prefix_tokens, (gh, gw)), (gh, gw)

    def _hooks(self, hooks: Sequence[int]) -> tuple[int, ...]:
        hooks = tuple(int(h) for h in hooks)
        bad = [h for h in hooks if not 0 <= h < self.depth]
        if bad:
            raise ValueError(f"VisionTransformer: hooks {bad} out of range for depth={self.depth} "
                             f"(block indices 0..{self.depth - 1})")
        return hooks

    def _run(self, x, hooks: tuple[int, ...], last: int):
        """Blocks 0..last on the embedded x -> (tokens after block `last`, [output of block i
        for i in hooks]); every hook must be <= last."""
        tokens, _ = self._embed(x)
        outs = {}
        for i in range(last + 1):
            tokens = self.blocks[i](tokens)
            if i in hooks:
                outs[i] = tokens
        return tokens, [outs[h] for h in hooks]

    def _head(self, f):
        if self.num_classes <= 0:
            return (f[:, 0] + f[:, 1]) / 2 if self.distilled else f[:, 0]
        if self.distilled:
            return (self.head(f[:, 0]) + self.head_dist(f[:, 1])) / 2
        return self.head(f[:, 0])

    def block_outputs(self, x, hooks: Sequence[int] = TAP_HOOKS) -> list[jax.Array]:
        """x [N, H, W, 3] -> [output of block i for i in hooks], each [N, T, D] float32.
        Only blocks 0..max(hooks) run."""
        hooks = self._hooks(hooks)
        return self._run(x, hooks, max(hooks, default=-1))[1]

    def taps(self, x, hooks: Sequence[int] = TAP_HOOKS) -> list[jax.Array]:
        """x [N, H, W, 3] -> [block-i output without prefix tokens for i in hooks], each
        [N, H // p, W // p, D] float32 ([N, 14, 14, D] at 224x224)."""
        grid = (x.shape[1] // self.patch_size, x.shape[2] // self.patch_size)
        return [tokens_to_map(t, grid, self.num_prefix_tokens) for t in self.block_outputs(x, hooks)]

    def features(self, x) -> jax.Array:
        """x [N, H, W, 3] -> final-normed tokens [N, T, D] float32."""
        return self.norm(self._run(x, (), self.depth - 1)[0])

    def __call__(self, x, hooks: Sequence[int] | None = None):
        """x [N, H, W, 3] -> logits [N, num_classes] (pre-logits [N, D] if num_classes == 0);
        with hooks (block indices): (list of those blocks' outputs [N, T, D], logits), one pass."""
        hk = () if hooks is None else self._hooks(hooks)
        tokens, outs = self._run(x, hk, self.depth - 1)
        logits = self._head(self.norm(tokens))
        return logits if hooks is None else (outs, logits)


def vit_from_name(name: str, **overrides) -> VisionTransformer:
    """A `VisionTransformer` for a timm model name in `DEIT_CONFIGS`; keyword arguments override
    the config (e.g. num_classes=0, dtype=jnp.bfloat16)."""
    if name not in DEIT_CONFIGS:
        raise ValueError(f"unknown ViT name {name!r}; known: {sorted(DEIT_CONFIGS)}")
    return VisionTransformer(**{**DEIT_CONFIGS[name], **overrides})


# --------------------------------------------------------------------------------------------
# StyleGAN-XL's random readout heads
# --------------------------------------------------------------------------------------------

class _Conv(nn.Module):
    """Conv with bias and symmetric zero padding: [N, H, W, I] -> [N, Ho, Wo, features],
    Ho = (H + 2 pad - k) // stride + 1. params 'kernel' [k, k, I, O] (HWIO), 'bias' [O]; PyTorch
    Conv2d default init (fan_in = I * k * k)."""
    features: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        k, cin = self.kernel, x.shape[-1]
        init = torch_default_uniform(cin * k * k)
        w = self.param("kernel", init, (k, k, cin, self.features), jnp.float32)
        b = self.param("bias", init, (self.features,), jnp.float32)
        x = x.astype(self.dtype)
        if k == 1 and self.stride == 1 and self.padding == 0:
            y = jnp.einsum("nhwi,io->nhwo", x, w[0, 0].astype(self.dtype), precision=self.precision)
        else:
            pad = [(self.padding, self.padding)] * 2
            y = jax.lax.conv_general_dilated(x, w.astype(self.dtype), (self.stride, self.stride), pad,
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                             precision=self.precision)
        return y + b.astype(y.dtype)


class _ConvTransposeK(nn.Module):
    """ConvTranspose2d with kernel == stride == k, no padding, with bias:
    [N, H, W, I] -> [N, k H, k W, features]; out[n, k i + a, k j + b, o] =
    sum_c x[n, i, j, c] kernel[a, b, c, o] + bias[o]. params 'kernel' [k, k, I, O] (torch's
    weight [I, O, k, k] transposed (2, 3, 0, 1)), 'bias' [O]; PyTorch ConvTranspose2d default
    init, whose fan_in is O * k * k."""
    features: int
    kernel: int
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        k = self.kernel
        n, h, w, cin = x.shape
        init = torch_default_uniform(self.features * k * k)
        kern = self.param("kernel", init, (k, k, cin, self.features), jnp.float32)
        b = self.param("bias", init, (self.features,), jnp.float32)
        y = jnp.einsum("nhwc,abco->nhawbo", x.astype(self.dtype), kern.astype(self.dtype),
                       precision=self.precision)
        return y.reshape(n, h * k, w * k, self.features) + b.astype(y.dtype)


class ViTReadout(nn.Module):
    """StyleGAN-XL's frozen random heads on the four ViT taps (`_make_vit_b16_backbone`,
    layer1..layer4 after the readout/transpose/unflatten steps).

    taps: 4 maps [N, gh, gw, C] (C = the ViT width, e.g. `VisionTransformer.taps`) ->
      layer1: Conv1x1 C -> f0, ConvTranspose 4x4 stride 4  -> [N, 4gh, 4gw, f0]
      layer2: Conv1x1 C -> f1, ConvTranspose 2x2 stride 2  -> [N, 2gh, 2gw, f1]
      layer3: Conv1x1 C -> f2                              -> [N, gh, gw, f2]
      layer4: Conv1x1 C -> f3, Conv3x3 stride 2 padding 1  -> [N, ceil(gh/2), ceil(gw/2), f3]
    (features = (f0, f1, f2, f3) = (96, 192, 384, 768) for deit_base: 56, 28, 14, 7 at 224.)
    No activations in between. Every layer has a bias.

    Variables: {'params': {'layer1_3', 'layer1_4', 'layer2_3', 'layer2_4', 'layer3_3',
    'layer4_3', 'layer4_4': {'kernel': [k, k, I, O], 'bias': [O]}}}, named after the torch
    Sequential indices (state-dict keys `layerK.J.weight` / `.bias`, see `readout_state_dict`).
    `init` draws PyTorch's default distributions (U(+-1/sqrt(fan_in)) for weights and biases,
    fan_in = I*k*k for the convs and O*k*k for the transposed convs), not PyTorch's numbers.
    """
    features: tuple[int, int, int, int] = (96, 192, 384, 768)
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, taps: Sequence[jax.Array]) -> list[jax.Array]:
        if len(taps) != 4:
            raise ValueError(f"ViTReadout expects 4 tap maps [N, gh, gw, C]; got {len(taps)}")
        for t in taps:
            if getattr(t, "ndim", 0) != 4:
                raise ValueError(f"ViTReadout expects tap maps [N, gh, gw, C]; "
                                 f"got shape {getattr(t, 'shape', None)}")
        f0, f1, f2, f3 = self.features
        kw = dict(dtype=self.dtype, precision=self.precision)
        o1 = _ConvTransposeK(f0, 4, name="layer1_4", **kw)(_Conv(f0, name="layer1_3", **kw)(taps[0]))
        o2 = _ConvTransposeK(f1, 2, name="layer2_4", **kw)(_Conv(f1, name="layer2_3", **kw)(taps[1]))
        o3 = _Conv(f2, name="layer3_3", **kw)(taps[2])
        o4 = _Conv(f3, 3, 2, 1, name="layer4_4", **kw)(_Conv(f3, name="layer4_3", **kw)(taps[3]))
        return [o1, o2, o3, o4]


def readout_from_name(name: str, **overrides) -> ViTReadout:
    """The `ViTReadout` StyleGAN-XL builds for a ViT name (channels from `READOUT_FEATURES`)."""
    if name not in READOUT_FEATURES:
        raise ValueError(f"unknown ViT name {name!r}; known: {sorted(READOUT_FEATURES)}")
    return ViTReadout(**{"features": READOUT_FEATURES[name], **overrides})


def forward_vit(vit: VisionTransformer, vit_variables, readout: ViTReadout, readout_variables,
                x: jax.Array, hooks: Sequence[int] = TAP_HOOKS) -> list[jax.Array]:
    """StyleGAN-XL's `forward_vit`: x [N, H, W, 3] (normalised) -> the 4 readout maps."""
    taps = vit.apply(vit_variables, x, hooks, method="taps")
    return readout.apply(readout_variables, taps)


# --------------------------------------------------------------------------------------------
# timm state dicts
# --------------------------------------------------------------------------------------------

_BLOCK_RE = re.compile(r"^blocks_(\d+)$")


def _timm_key(path: Sequence[str]) -> tuple[str, str]:
    """Our param path -> (timm key, transform: 'id' | 'dense' | 'conv')."""
    parts = list(path)
    leaf = parts.pop()
    mods = []
    for p in parts:
        m = _BLOCK_RE.match(p)
        mods.append(f"blocks.{m.group(1)}" if m else ("patch_embed.proj" if p == "patch_embed" else p))
    if not mods:  # cls_token, dist_token, pos_embed
        return leaf, "id"
    if leaf == "kernel":
        return ".".join(mods + ["weight"]), ("conv" if parts[0] == "patch_embed" else "dense")
    if leaf == "scale":
        return ".".join(mods + ["weight"]), "id"
    return ".".join(mods + [leaf]), "id"


def _to_ours(a: np.ndarray, how: str) -> np.ndarray:
    if how == "dense":
        return np.ascontiguousarray(a.T)
    if how == "conv":
        return np.ascontiguousarray(a.transpose(2, 3, 1, 0))
    return np.array(a)


def _to_timm(a: np.ndarray, how: str) -> np.ndarray:
    if how == "dense":
        return np.ascontiguousarray(a.T)
    if how == "conv":
        return np.ascontiguousarray(a.transpose(3, 2, 0, 1))
    return np.array(a)


def _flat(tree: Mapping, prefix: tuple = ()) -> dict[tuple, Any]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


def _nest(flat: Mapping[tuple, Any]) -> dict:
    out: dict = {}
    for path, v in flat.items():
        t = out
        for p in path[:-1]:
            t = t.setdefault(p, {})
        t[path[-1]] = v
    return out


def _expected_shapes(model: VisionTransformer) -> dict[tuple, tuple]:
    s = model.img_size
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, s, s, 3), jnp.float32)))
    return {k: tuple(v.shape) for k, v in _flat(shapes["params"]).items()}


def _as_model(model: VisionTransformer | str) -> VisionTransformer:
    return vit_from_name(model) if isinstance(model, str) else model


def _read_state(src: Any) -> dict[str, np.ndarray]:
    if isinstance(src, Mapping):
        return {str(k): v for k, v in src.items()}
    path = os.fspath(src)
    from gigajax import assets
    if path.endswith(".safetensors"):
        return assets.read_safetensors(path)
    if path.endswith(".npz"):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    return assets.read_torch(path)


def _strip_prefix(state: Mapping[str, Any], prefix: str | None) -> dict[str, Any]:
    """Keep the keys under `prefix` (without it). prefix None: '' when 'cls_token' is a key,
    else the unique P such that P + 'cls_token' and P + 'pos_embed' are keys (e.g. 'model.' in
    DeiT's released checkpoints {'model': state_dict}, 'module.' after DDP)."""
    if prefix is None:
        if "cls_token" in state:
            prefix = ""
        else:
            cands = sorted(k[: -len("cls_token")] for k in state
                           if k.endswith("cls_token") and k[: -len("cls_token")] + "pos_embed" in state)
            if len(cands) != 1:
                raise ValueError("timm ViT state_dict: "
                                 + (f"several ViTs found under prefixes {cands}; pass prefix=" if cands else
                                    f"no 'cls_token' / 'pos_embed' keys (not a timm ViT?); first keys: "
                                    f"{sorted(state)[:6]}"))
            prefix = cands[0]
    if not prefix:
        return dict(state)
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def variables_from_timm(state: Mapping[str, Any], model: VisionTransformer | str, *,
                        head: bool | None = None, prefix: str | None = None) -> dict:
    """A timm ViT/DeiT state_dict {name: array} -> {'params': ...} (numpy float32) for `model`
    (a `VisionTransformer` or a `DEIT_CONFIGS` name).

    Linear weights [out, in] are transposed to [in, out], the patch conv OIHW to HWIO; LayerNorm
    weight -> scale. head: None takes `head` / `head_dist` when the model has a classifier
    (num_classes > 0); False drops them (the discriminator's feature network does not need them;
    head keys in the file are then ignored). prefix: see `_strip_prefix`.

    Raises ValueError naming every missing key, unexpected key and shape mismatch (in timm's names
    and shapes), so a checkpoint of another model fails with the reason."""
    model = _as_model(model)
    state = _strip_prefix(state, prefix)
    want = _expected_shapes(model)
    if head is None:
        head = model.num_classes > 0
    if head and model.num_classes <= 0:
        raise ValueError("variables_from_timm: head=True but the model has num_classes=0")
    is_head = lambda path: path[0] in ("head", "head_dist")  # noqa: E731
    missing, wrong, flat = [], [], {}
    used = set()
    for path, shape in want.items():
        if is_head(path) and not head:
            continue
        key, how = _timm_key(path)
        if key not in state:
            missing.append(key)
            continue
        used.add(key)
        a = np.asarray(state[key])
        if not np.issubdtype(a.dtype, np.floating) and a.dtype.name != "bfloat16":
            wrong.append(f"{key}: dtype {a.dtype}, expected floating point")
            continue
        a = _to_ours(a.astype(np.float32), how)
        if a.shape != shape:
            wrong.append(f"{key}: shape {tuple(_to_timm(a, how).shape)}, expected "
                         f"{tuple(_to_timm(np.empty(shape, np.float32), how).shape)}")
            continue
        flat[path] = a
    dropped = lambda k: not head and k.split(".")[0] in ("head", "head_dist")  # noqa: E731
    extra = sorted(k for k in state if k not in used and not dropped(k))
    if missing or extra or wrong:
        cfg = (f"embed_dim={model.embed_dim}, depth={model.depth}, num_heads={model.num_heads}, "
               f"distilled={model.distilled}, num_classes={model.num_classes}, img_size={model.img_size}")
        msg = [f"timm ViT state_dict does not match VisionTransformer({cfg}):"]
        for what, items in (("missing keys", missing), ("unexpected keys", extra), ("mismatched", wrong)):
            if items:
                msg.append(f"  {what} ({len(items)}): {items[:8]}{' ...' if len(items) > 8 else ''}")
        raise ValueError("\n".join(msg))
    return {"params": _nest(flat)}


def load_timm_vit(path_or_state_dict: Any, name: VisionTransformer | str, *, head: bool | None = None,
                  prefix: str | None = None) -> dict:
    """Read a timm ViT/DeiT checkpoint without torch -> {'params': ...} (numpy float32).

    path_or_state_dict: a `.pth`/`.pt`/`.bin` file (torch.save zip or legacy format, read with
    `gigajax.assets.read_torch`), a `.safetensors` file (`read_safetensors`), an `.npz`, or a
    mapping {timm name: array}. DeiT's released files ({'model': state_dict}) load as they are.
    name: a `DEIT_CONFIGS` name or a `VisionTransformer`. head / prefix: see `variables_from_timm`."""
    return variables_from_timm(_read_state(path_or_state_dict), name, head=head, prefix=prefix)


def timm_state_dict(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Our `VisionTransformer` variables -> timm's state_dict {name: float32 array} (the inverse
    of `variables_from_timm`, bitwise): load it with `model.load_state_dict({k: torch.from_numpy(v)
    ...})` on the timm model of the same config."""
    params = variables["params"] if "params" in variables else variables
    out = {}
    for path, v in _flat(params).items():
        key, how = _timm_key(path)
        out[key] = _to_timm(np.asarray(v, np.float32), how)
    return out


_READOUT_LAYERS = ("layer1_3", "layer1_4", "layer2_3", "layer2_4", "layer3_3", "layer4_3", "layer4_4")
_TRANSPOSED = ("layer1_4", "layer2_4")


def readout_state_dict(variables: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """`ViTReadout` variables -> the torch keys of StyleGAN-XL's `pretrained.layerK` Sequentials:
    {prefix + 'layerK.J.weight' / '.bias': array}; conv weights OIHW, transposed-conv weights
    [I, O, k, k]."""
    params = variables["params"] if "params" in variables else variables
    out = {}
    for name in _READOUT_LAYERS:
        w = np.asarray(params[name]["kernel"], np.float32)
        key = prefix + name.replace("_", ".")
        out[key + ".weight"] = np.ascontiguousarray(w.transpose(2, 3, 0, 1) if name in _TRANSPOSED
                                                    else w.transpose(3, 2, 0, 1))
        out[key + ".bias"] = np.array(params[name]["bias"], np.float32)
    return out


def readout_variables_from_state_dict(state: Mapping[str, Any], features: Sequence[int] | None = None,
                                      prefix: str = "") -> dict:
    """The inverse of `readout_state_dict`: {prefix + 'layerK.J.weight'/'.bias': array} (e.g. from
    a StyleGAN-XL discriminator, prefix 'feature_networks.<name>.pretrained.') -> {'params': ...}.
    Keys outside the seven layers are ignored; a missing key or (with `features`) a wrong output
    width is a ValueError."""
    params = {}
    for name in _READOUT_LAYERS:
        key = prefix + name.replace("_", ".")
        if key + ".weight" not in state or key + ".bias" not in state:
            raise ValueError(f"ViT readout state_dict: missing {key}.weight / {key}.bias")
        w = np.asarray(state[key + ".weight"], np.float32)
        if w.ndim != 4:
            raise ValueError(f"ViT readout state_dict: {key}.weight has shape {w.shape}, expected 4-D")
        k = w.transpose(2, 3, 0, 1) if name in _TRANSPOSED else w.transpose(2, 3, 1, 0)
        if features is not None and k.shape[-1] != features[int(name[5]) - 1]:
            raise ValueError(f"ViT readout state_dict: {key}.weight has {k.shape[-1]} output channels, "
                             f"expected {features[int(name[5]) - 1]}")
        params[name] = {"kernel": np.ascontiguousarray(k), "bias": np.asarray(state[key + ".bias"], np.float32)}
    return {"params": params}
