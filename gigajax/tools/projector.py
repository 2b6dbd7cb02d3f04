"""Projection of an image into W: NVlabs' projector.py (stylegan2-ada-pytorch / StyleGAN2 paper,
Appendix D) with the same schedule, loss and noise handling.

Optimised jointly with Adam (betas 0.9, 0.999): one w [1, 1, w_dim] broadcast to every layer
(or, with `w_plus=True`, each layer's own w [1, num_ws, w_dim]), starting at the mean w of
10 000 mapped samples, and every per-pixel noise buffer (`noise_const`), restarted from N(0, I).
Each step:
  t = step / num_steps
  lr = 0.1 * rampdown(t) * rampup(t): cosine ramp down over the last 25 %, linear up over the first 5 %
  w + N(0, (w_std * 0.05 * max(0, 1 - t / 0.75)^2)^2)  -> synthesise with the noise buffers ('const')
  loss = LPIPS-VGG16(target, synth) + 1e5 * noise regulariser
  Adam update, then each noise buffer is renormalised to zero mean, unit variance.
Images larger than 256 are area-downsampled to 256 for the LPIPS VGG16 features, as officially.
The result keeps w after every step, as the official `w_out`.

Difference of form: LPIPS is computed as the squared distance of pre-scaled feature vectors
(the official vgg16.pt `return_lpips` form), so the target's features are computed once; the
value equals `gigajax.metrics.lpips` LPIPS('vgg') exactly (see `lpips_features`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import weakref
from typing import Mapping

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gigajax.metrics.lpips import MIN_SIZE, SCALE, SHIFT, VGG16Features, _unit_normalize, load_lpips
from gigajax.tools.sampler import Sampler
from gigajax.train.grid import to_uint8

LPIPS_MAX_SIZE = 256

# Compiled steps per sampler and (regularize_noise_weight, precision): a second projection with
# the same generator starts without compiling.
_STEPS: "weakref.WeakKeyDictionary[Sampler, dict]" = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------

def noise_buffers(variables) -> dict[str, jax.Array]:
    """The per-pixel noise inputs of G: '/'-joined buffer path -> [r, r] (every `noise_const`,
    e.g. 'synthesis/b8/conv0/noise_const')."""
    flat = flax.traverse_util.flatten_dict(dict(variables.get("buffers", {})))
    return {"/".join(k): v for k, v in flat.items() if k[-1] == "noise_const"}


def with_noise(variables, noise: Mapping[str, jax.Array]):
    """`variables` with the noise buffers named in `noise` (as `noise_buffers` names them) replaced."""
    flat = flax.traverse_util.flatten_dict(dict(variables["buffers"]))
    for name, value in noise.items():
        key = tuple(name.split("/"))
        if key not in flat:
            raise KeyError(f"the generator has no buffer {name!r}")
        flat[key] = value
    return {**variables, "buffers": flax.traverse_util.unflatten_dict(flat)}


def noise_regularizer(noise: Mapping[str, jax.Array]) -> jax.Array:
    """Sum over buffers and octaves of the squared 1-pixel autocorrelations (both axes, circular):
    for each [r, r] buffer n, repeat {add mean(n * roll(n, 1, x))^2 + mean(n * roll(n, 1, y))^2;
    stop once r <= 8; else 2x2 average-pool}. About 0 for white noise (~2 / r^2 per octave), 2
    per octave for a constant buffer: it keeps the optimiser from hiding the image in the noise."""
    total = jnp.float32(0.0)
    for n in noise.values():
        n = jnp.asarray(n, jnp.float32)
        while True:
            total += jnp.mean(n * jnp.roll(n, 1, axis=1)) ** 2 + jnp.mean(n * jnp.roll(n, 1, axis=0)) ** 2
            if n.shape[0] <= 8:
                break
            n = n.reshape(n.shape[0] // 2, 2, n.shape[1] // 2, 2).mean(axis=(1, 3))
    return total


def normalize_noise(noise: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Each buffer -> zero mean, unit mean square (the official step after every update)."""
    out = {}
    for k, n in noise.items():
        n = n - jnp.mean(n)
        out[k] = n * jax.lax.rsqrt(jnp.mean(jnp.square(n)))
    return out


def area_downsample(x: jax.Array, size: int = LPIPS_MAX_SIZE) -> jax.Array:
    """[N, H, W, C] -> [N, size, size, C] by averaging (H / size)^2 blocks when H > size
    (torch's mode='area' for integer factors; StyleGAN resolutions are powers of two)."""
    h, w = x.shape[1:3]
    if h <= size and w <= size:
        return x
    if h % size or w % size:
        raise ValueError(f"area_downsample: {h}x{w} is not a multiple of {size}")
    fh, fw = h // size, w // size
    return x.reshape(x.shape[0], size, fh, size, fw, x.shape[3]).mean(axis=(2, 4))


def lpips_features(lpips_params, images: jax.Array, precision=None) -> jax.Array:
    """images [N, H, W, C] in [-1, 1] (C = 1 or 3; H, W >= 16) -> float32 [N, F] such that
    |f(x) - f(y)|^2 = LPIPS-VGG16(x, y).

    LPIPS = sum_k mean_hw sum_c lin_kc (u_k(x) - u_k(y))^2 with u_k the channel-normalised tap k;
    since lin >= 0 that is the squared norm of the difference of u_k * sqrt(lin_k / (h_k w_k)).
    Grayscale is replicated to RGB; larger than 256 is area-downsampled to 256 first."""
    x = area_downsample(jnp.asarray(images, jnp.float32))
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    x = (x - jnp.asarray(SHIFT, jnp.float32)) / jnp.asarray(SCALE, jnp.float32)
    taps = VGG16Features(precision).apply({"params": lpips_params["net"]}, x)
    feats = []
    for k, f in enumerate(taps):
        lin = lpips_params[f"lin{k}"]["kernel"][0, 0, :, 0]                     # [C_k], >= 0
        scale = jnp.sqrt(lin / (f.shape[1] * f.shape[2]))
        feats.append((_unit_normalize(f) * scale).reshape(f.shape[0], -1))
    return jnp.concatenate(feats, axis=1)


_jit_features = jax.jit(lpips_features, static_argnums=2)


def learning_rate(t: float, initial: float = 0.1, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """The official schedule at progress t = step / num_steps."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return initial * ramp * min(1.0, t / rampup)


def w_noise_scale(t: float, w_std: float, factor: float = 0.05, ramp_length: float = 0.75) -> float:
    """Std of the noise added to w at progress t: w_std * factor * max(0, 1 - t / ramp_length)^2."""
    return w_std * factor * max(0.0, 1.0 - t / ramp_length) ** 2


def w_stats(sampler: Sampler, num_samples: int = 10000, class_idx: int | None = None,
            seed: int = 123, batch_size: int = 1000) -> tuple[np.ndarray, float]:
    """(w_avg float32 [w_dim], w_std) of `num_samples` mapped z ~ RandomState(seed): w_std is the
    RMS distance to w_avg, sqrt(sum |w - w_avg|^2 / N), as officially (one scalar, all dims)."""
    z = np.random.RandomState(seed).randn(num_samples, sampler.z_dim).astype(np.float32)
    c = sampler.labels(class_idx, 1)
    chunks = []
    for i in range(0, num_samples, batch_size):
        zi = z[i:i + batch_size]
        chunks.append(sampler.ws(zi, np.repeat(c, len(zi), 0), first_only=True))
    w = np.concatenate(chunks).astype(np.float64)
    w_avg = w.mean(axis=0)
    return w_avg.astype(np.float32), float(np.sqrt(np.sum((w - w_avg) ** 2) / num_samples))


# --------------------------------------------------------------------------------------------
# The optimisation
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Projection:
    """ws:    float32 [num_steps, num_ws, w_dim], w after each step (each row one w broadcast to
           every layer unless w_plus); ws[-1] is the projection.
    noise: '/'-joined buffer path -> float32 [r, r], the optimised noise buffers.
    dist:  float32 [num_steps], LPIPS distance at each step (before its update).
    loss:  float32 [num_steps], dist + regularize_noise_weight * noise regulariser."""
    ws: np.ndarray
    noise: dict
    dist: np.ndarray
    loss: np.ndarray

    def variables(self, variables):
        """G's variables with the optimised noise buffers (to render ws as the projector saw them)."""
        return with_noise(variables, {k: jnp.asarray(v) for k, v in self.noise.items()})


def _to_float_image(target, sampler: Sampler) -> np.ndarray:
    t = np.asarray(target)
    want = (sampler.img_resolution, sampler.img_resolution, sampler.img_channels)
    if t.shape != want:
        raise ValueError(f"target must be [H, W, C] = {list(want)} (the generator's output), got {list(t.shape)}; "
                         f"see load_target for files")
    if t.dtype != np.uint8:
        raise ValueError(f"target must be uint8 in [0, 255], got {t.dtype}")
    if sampler.img_resolution < MIN_SIZE["vgg"]:   # VGG16's pools would leave no pixels: NaN, not an error
        raise ValueError(f"the projector's LPIPS VGG16 needs images of at least {MIN_SIZE['vgg']}x{MIN_SIZE['vgg']}; "
                         f"this generator makes {sampler.img_resolution}x{sampler.img_resolution}")
    return t.astype(np.float32)[None] / 127.5 - 1.0


def make_step(sampler: Sampler, *, regularize_noise_weight: float = 1e5, precision=None):
    """-> (step, init_opt). step(p, opt_state, key, lr, w_noise_scale, consts) -> (p, opt_state, w,
    loss, dist), jit-compiled once per shape: p = {'w': [1, 1 or num_ws, w_dim], 'noise': {name:
    [r, r]}} (donated, with opt_state); w = the updated p['w'][0]; consts = (G variables, LPIPS
    params, target features [1, F]) -- arguments, not closure constants, so the weights are not
    baked into the compiled program."""
    cache = _STEPS.setdefault(sampler, {})
    if (regularize_noise_weight, precision) in cache:
        return cache[regularize_noise_weight, precision]
    G, num_ws, w_dim = sampler.G, sampler.num_ws, sampler.w_dim
    adam = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)   # torch.optim.Adam's defaults

    def loss_fn(p, key, noise_scale, consts):
        variables, lpips_params, target_features = consts
        w = p["w"] + jax.random.normal(key, p["w"].shape, jnp.float32) * noise_scale
        ws = jnp.broadcast_to(w, (1, num_ws, w_dim))
        img = G.apply(with_noise(variables, p["noise"]), ws, method="synthesize", noise_mode="const")
        dist = jnp.sum(jnp.square(target_features - lpips_features(lpips_params, img, precision)))
        loss = dist + noise_regularizer(p["noise"]) * regularize_noise_weight
        return loss, dist

    def step(p, opt_state, key, lr, noise_scale, consts):
        (loss, dist), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, key, noise_scale, consts)
        updates, opt_state = adam.update(grads, opt_state)
        p = jax.tree_util.tree_map(lambda x, u: x - lr * u, p, updates)
        p = {"w": p["w"], "noise": normalize_noise(p["noise"])}
        return p, opt_state, p["w"][0], loss, dist

    cache[regularize_noise_weight, precision] = jax.jit(step, donate_argnums=(0, 1)), adam.init
    return cache[regularize_noise_weight, precision]


def project(sampler: Sampler, target, *, num_steps: int = 1000, w_avg_samples: int = 10000,
            initial_learning_rate: float = 0.1, initial_noise_factor: float = 0.05,
            lr_rampdown_length: float = 0.25, lr_rampup_length: float = 0.05, noise_ramp_length: float = 0.75,
            regularize_noise_weight: float = 1e5, w_plus: bool = False, class_idx: int | None = None,
            seed: int = 303, precision=None, verbose: bool = False) -> Projection:
    """Project `target` (uint8 [H, W, C], the generator's resolution and channels) into W (see the
    module doc; argument names and defaults are the official ones). w_plus optimises one w per
    layer (W+), a common extension. class_idx labels the w statistics' samples of a conditional G.
    `seed` draws the initial noise buffers and the per-step w noise. Returns a `Projection`."""
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps}: expected >= 1")
    target_img = _to_float_image(target, sampler)
    lpips_params = load_lpips("vgg")[1]["params"]
    target_features = _jit_features(lpips_params, jnp.asarray(target_img), precision)

    w_avg, w_std = w_stats(sampler, w_avg_samples, class_idx)
    if verbose:
        print(f"w statistics from {w_avg_samples} samples: |w_avg| {np.linalg.norm(w_avg):.3f}, w_std {w_std:.3f}",
              flush=True)
    key = jax.random.key(seed)
    noise_key, step_key = jax.random.split(key)
    names = sorted(noise_buffers(sampler.variables))
    if not names:
        raise ValueError("the generator has no noise buffers (noise_const) to optimise")
    bufs = noise_buffers(sampler.variables)
    noise = {k: jax.random.normal(jax.random.fold_in(noise_key, i), bufs[k].shape, jnp.float32)
             for i, k in enumerate(names)}
    w0 = np.tile(w_avg[None, None], (1, sampler.num_ws if w_plus else 1, 1))
    p = {"w": jnp.asarray(w0), "noise": noise}

    step_fn, init_opt = make_step(sampler, regularize_noise_weight=regularize_noise_weight, precision=precision)
    opt_state = init_opt(p)
    consts = (sampler.variables, lpips_params, target_features)
    ws, dists, losses = [], [], []
    t0 = time.time()
    for i in range(num_steps):
        t = i / num_steps
        lr = learning_rate(t, initial_learning_rate, lr_rampdown_length, lr_rampup_length)
        scale = w_noise_scale(t, w_std, initial_noise_factor, noise_ramp_length)
        p, opt_state, w, loss, dist = step_fn(p, opt_state, jax.random.fold_in(step_key, i), jnp.float32(lr),
                                              jnp.float32(scale), consts)
        ws.append(w)                     # device arrays: no host sync per step
        dists.append(dist)
        losses.append(loss)
        if verbose and ((i + 1) % 100 == 0 or i + 1 == num_steps):
            print(f"step {i + 1:>4d}/{num_steps}: dist {float(dist):<7.4f} loss {float(loss):<9.4f} "
                  f"({time.time() - t0:.1f} s)", flush=True)
    ws = np.asarray(jnp.stack(ws))
    ws = np.broadcast_to(ws, (num_steps, sampler.num_ws, sampler.w_dim)).astype(np.float32)
    return Projection(ws=ws, noise={k: np.asarray(v) for k, v in p["noise"].items()},
                      dist=np.asarray(jnp.stack(dists)), loss=np.asarray(jnp.stack(losses)))


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def load_target(path: str | os.PathLike, resolution: int, channels: int) -> np.ndarray:
    """An image file -> uint8 [resolution, resolution, channels]: centre-cropped to a square and
    resized with Lanczos, as the official command line prepares its target."""
    from PIL import Image
    if channels not in (1, 3):
        raise ValueError(f"load_target: {channels} channels; only 1 (L) and 3 (RGB) are supported")
    img = Image.open(path).convert("RGB" if channels == 3 else "L")
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    img = img.resize((resolution, resolution), Image.LANCZOS)
    return np.asarray(img, np.uint8).reshape(resolution, resolution, channels)


def _save_png(img_uint8: np.ndarray, path) -> None:
    from PIL import Image
    Image.fromarray(img_uint8[..., 0] if img_uint8.shape[-1] == 1 else img_uint8).save(path)


def save_projection(outdir, sampler: Sampler, result: Projection, target, *, gif: bool = False,
                    gif_every: int = 10, fps: float = 10.0) -> dict:
    """Write the official outputs into `outdir`: target.png, proj.png (ws[-1] rendered with the
    optimised noise), projected_w.npz ('w' float32 [1, num_ws, w_dim] as officially, plus the
    noise buffers as 'noise/<path>') and, with `gif`, proj.gif: target | projection side by side
    every `gif_every` steps and at the last. Returns {name: path}."""
    from gigajax.tools.interpolate import save_gif
    os.makedirs(outdir, exist_ok=True)
    variables = result.variables(sampler.variables)
    target = np.asarray(target, np.uint8)
    paths = {"target": os.path.join(outdir, "target.png"), "proj": os.path.join(outdir, "proj.png"),
             "w": os.path.join(outdir, "projected_w.npz")}
    _save_png(target, paths["target"])
    _save_png(to_uint8(sampler.images(result.ws[-1:], variables=variables))[0], paths["proj"])
    np.savez(paths["w"], w=result.ws[-1:], **{f"noise/{k}": v for k, v in result.noise.items()})
    if gif:
        steps = sorted(set(range(gif_every - 1, len(result.ws), max(1, int(gif_every)))) | {len(result.ws) - 1})
        frames = to_uint8(sampler.images(result.ws[steps], variables=variables))
        side = np.concatenate([np.repeat(target[None], len(frames), 0), frames], axis=2)
        paths["gif"] = save_gif(side, os.path.join(outdir, "proj.gif"), fps)
    return paths
