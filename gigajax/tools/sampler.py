"""Seeds, class labels and the generator calls every tool shares.

Seeds mean what they mean in NVlabs' tools (gen_images.py, style_mixing.py, gen_video.py): seed s
is the latent `np.random.RandomState(s).randn(z_dim)`, so `--seeds 0-3` shows the same latents
here as there for a converted network. `Sampler` holds one generator's jit-compiled mapping and
synthesis; build it once and pass it to the tools, so every grid, frame and step reuses the same
compiled programs.
"""

from __future__ import annotations

import functools
import re
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

NOISE_MODES = ("const", "random", "none")


def parse_range(text: str | Sequence[int], what: str = "seeds") -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]: comma-separated non-negative integers and inclusive ranges a-b
    (NVlabs' syntax). A list or tuple of ints passes through; '' is the empty list."""
    if isinstance(text, (list, tuple, range)):
        return [int(x) for x in text]
    out: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part and str(text).strip() == "":
            continue
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            a, b = int(m[1]), int(m[2])
            if b < a:
                raise ValueError(f"{what} {text!r}: the range {part!r} is empty (its end is before its start)")
            out.extend(range(a, b + 1))
        elif re.fullmatch(r"\d+", part):
            out.append(int(part))
        else:
            raise ValueError(f"{what} {text!r}: cannot parse {part!r}; expected comma-separated non-negative "
                             f"integers or inclusive ranges, e.g. '0-3,7'")
    return out


def seed_z(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """float32 [len(seeds), z_dim]: row i is np.random.RandomState(seeds[i]).randn(z_dim)."""
    seeds = list(seeds)
    bad = [s for s in seeds if not 0 <= int(s) < 2 ** 32]
    if bad:
        raise ValueError(f"seeds must be integers in [0, 2**32) (numpy RandomState seeds); got {bad}")
    return np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds]).astype(np.float32).reshape(
        len(seeds), z_dim)


def class_labels(c_dim: int, class_idx: int | None, n: int) -> np.ndarray:
    """float32 [n, c_dim]: the one-hot label of `class_idx` in every row ([n, 0] when unconditional).

    A conditional generator needs a class and an unconditional one must not get one: both
    mistakes raise instead of silently drawing something other than what was asked for."""
    if c_dim == 0:
        if class_idx is not None:
            raise ValueError(f"class {class_idx} was given, but the generator is unconditional (c_dim=0); "
                             f"drop --class / class_idx")
        return np.zeros((n, 0), np.float32)
    if class_idx is None:
        raise ValueError(f"the generator is conditional (c_dim={c_dim}): pass a class index in [0, {c_dim}) "
                         f"(--class / class_idx)")
    if not 0 <= int(class_idx) < c_dim:
        raise ValueError(f"class {class_idx} is out of range: the generator has classes 0..{c_dim - 1}")
    return np.repeat(np.eye(c_dim, dtype=np.float32)[int(class_idx)][None], n, axis=0)


def _map(G, variables, z, c, psi, truncation_cutoff=None, first_only=False):
    ws = G.apply(variables, z, c, truncation_psi=psi, truncation_cutoff=truncation_cutoff, method="map")
    # w is the same at every layer before mixing: [N, w_dim] avoids materialising num_ws copies
    # (10k samples x 18 ws x 512 floats for the projector's statistics would be 370 MB).
    return ws[:, 0] if first_only else ws


def _synthesize(G, variables, ws, key, noise_mode="const"):
    return G.apply(variables, ws, method="synthesize", noise_mode=noise_mode, rngs={"noise": key})


class Sampler:
    """One generator's mapping and synthesis, jit-compiled.

    G: a `gigajax.models.stylegan2.Generator` (or a module with its `map`/`synthesize` entry
    points); variables: {'params': ..., 'buffers': {... 'mapping': {'w_avg'}, ... noise_const}}.
    Synthesis always runs `batch_size` images at a time (the last batch padded), so every tool
    call on every number of images reuses one compiled program (the mapping, cheap to compile,
    gets one per batch size). Attributes z_dim, c_dim, w_dim, num_ws, img_resolution and
    img_channels mirror G's.
    """

    def __init__(self, G, variables, batch_size: int = 8):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size={batch_size}: expected >= 1")
        self.G, self.variables, self.batch_size = G, variables, int(batch_size)
        self.z_dim, self.c_dim, self.w_dim = int(G.z_dim), int(G.c_dim), int(G.w_dim)
        self.num_ws, self.img_resolution, self.img_channels = int(G.num_ws), int(G.img_resolution), int(G.img_channels)
        self._map = jax.jit(functools.partial(_map, G), static_argnames=("truncation_cutoff", "first_only"))
        self._synth = jax.jit(functools.partial(_synthesize, G), static_argnames=("noise_mode",))

    def labels(self, class_idx: int | None, n: int) -> np.ndarray:
        """float32 [n, c_dim] (see `class_labels`)."""
        return class_labels(self.c_dim, class_idx, n)

    def ws(self, z, c, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
           first_only: bool = False) -> np.ndarray:
        """z [N, z_dim], c [N, c_dim] -> ws float32 [N, num_ws, w_dim] ([N, w_dim] with first_only),
        truncated towards w_avg by psi (on the first `truncation_cutoff` ws only, if given).
        psi is traced, so every psi shares one compiled program; psi = 1 and 0 are exact."""
        psi = jnp.float32(truncation_psi)
        return np.asarray(self._map(self.variables, jnp.asarray(z, jnp.float32), jnp.asarray(c, jnp.float32), psi,
                                    truncation_cutoff=truncation_cutoff, first_only=first_only))

    def seed_ws(self, seeds: Sequence[int], class_idx: int | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> np.ndarray:
        """float32 [len(seeds), num_ws, w_dim]: the (truncated) ws of NVlabs-style seeds."""
        seeds = list(seeds)
        return self.ws(seed_z(seeds, self.z_dim), self.labels(class_idx, len(seeds)), truncation_psi,
                       truncation_cutoff)

    def images(self, ws, *, noise_mode: str = "const", key: jax.Array | None = None, variables=None) -> np.ndarray:
        """ws [N, num_ws, w_dim] -> float32 images [N, H, W, C] in about [-1, 1].

        noise_mode 'random' draws from `key` (default key 0), folded with the batch index.
        `variables` overrides the sampler's own (the projector's optimised noise buffers)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode={noise_mode!r}: expected one of {list(NOISE_MODES)}")
        ws = np.asarray(ws, np.float32)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, num_ws={self.num_ws}, w_dim={self.w_dim}], got {ws.shape}")
        variables = self.variables if variables is None else variables
        key = jax.random.key(0) if key is None else key
        bs, out = self.batch_size, []
        for i, start in enumerate(range(0, len(ws), bs)):
            chunk = ws[start:start + bs]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], bs - len(chunk), axis=0)])
            img = self._synth(variables, jnp.asarray(padded), jax.random.fold_in(key, i), noise_mode=noise_mode)
            out.append(np.asarray(img)[:len(chunk)])
        if not out:
            return np.zeros((0, self.img_resolution, self.img_resolution, self.img_channels), np.float32)
        return np.concatenate(out)

    def generate(self, seeds: Sequence[int], *, class_idx: int | None = None, truncation_psi: float = 1.0,
                 truncation_cutoff: int | None = None, noise_mode: str = "const", key=None) -> np.ndarray:
        """float32 [len(seeds), H, W, C]: what NVlabs' gen_images.py draws for these seeds."""
        ws = self.seed_ws(seeds, class_idx, truncation_psi, truncation_cutoff)
        return self.images(ws, noise_mode=noise_mode, key=key)
