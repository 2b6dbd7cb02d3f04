"""Inception features of image sets and generators: jit-compiled, sharded over the mesh, batched.

    ex = FeatureExtractor()                              # pool3 only; classifier=True adds logits
    real = dataset_features("mnist5k", extractor=ex)     # cached on disk, see `dataset_features`
    fake = ex.from_generator(generate, params, 10_000, z_dim=128, c_dim=10)
    fid = fid_from_features(real["pool3"], fake["pool3"])

Every batch has the same global shape (per-device batch x devices), so one program is compiled
per image size; the last batch is padded and the padding rows dropped. Images are split over the
('data',) mesh axis and the network is replicated. In a multi-process run every process calls
the same functions with the same arguments (the host reads the whole batch, each device keeps its
rows) and every process gets all features back.

Generators are sampled from fixed seeds: sample i uses z_i = sample_z(fold_in(key(seed), i)) (the
generator's own prior, N(0, I) by default) and, for conditional models, a class drawn from
fold_in(key(seed + 1), i) -- so the same N images come out whatever the batch size or device count
(per-pixel noise, drawn per batch, is the exception).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gigajax.metrics.inception import load_inception

# Bump when anything that changes the numbers changes (preprocessing, weights, output names):
# it is part of the dataset-statistics cache key.
EXTRACTOR_VERSION = "fid-inception-2015-12-05/tf1-bilinear/v1"


def per_index_inputs(sample_z, c_dim: int, idx, seed, logits):
    """Generated sample i's latent and one-hot label from keys folded with i (z from key(seed),
    the class from key(seed + 1) drawn by `logits`): every metric that generates sees the same
    images for the same indices, whatever the batch size or device count. -> (z [B, z_dim],
    c [B, c_dim])."""
    base_z, base_c = jax.random.key(seed), jax.random.key(seed + 1)
    z = jax.vmap(lambda i: sample_z(jax.random.fold_in(base_z, i), 1)[0])(idx)
    if not c_dim:
        return z, jnp.zeros((idx.shape[0], 0), jnp.float32)
    cls = jax.vmap(lambda i: jax.random.categorical(jax.random.fold_in(base_c, i), logits))(idx)
    return z, jax.nn.one_hot(cls, c_dim, dtype=jnp.float32)


def class_logits(class_probs, c_dim: int) -> jax.Array | None:
    """[c_dim] label weights (None: uniform) -> log-probabilities for jax.random.categorical;
    None when unconditional. ValueError names a wrong length or a negative weight."""
    if not c_dim:
        return None
    probs = np.full(c_dim, 1.0 / c_dim) if class_probs is None else np.asarray(class_probs, np.float64)
    if probs.shape != (c_dim,) or (probs < 0).any() or probs.sum() <= 0:
        raise ValueError(f"class_probs: expected {c_dim} non-negative weights, got {probs}")
    return jnp.asarray(np.log(np.maximum(probs / probs.sum(), 1e-30)), jnp.float32)


_NORMAL_Z: dict = {}


def _normal_z(key, n, *, z_dim):
    return jax.random.normal(key, (n, z_dim), jnp.float32)


def to_uint8(images: jax.Array) -> jax.Array:
    """Generator output float [-1, 1] -> uint8 the way NVlabs' metrics quantise it:
    clip(x * 127.5 + 128, 0, 255) truncated to an integer."""
    return jnp.clip(images * 127.5 + 128.0, 0.0, 255.0).astype(jnp.uint8)


def _tqdm(enabled: bool, total: int, desc: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="img", disable=not enabled or jax.process_index() != 0,
                dynamic_ncols=True, leave=False)


class FeatureExtractor:
    """The FID Inception, replicated over a ('data',) mesh, applied in fixed-size global batches.

    Args:
      outputs:          feature names to return (see `gigajax.metrics.inception`), default pool3.
      batch_per_device: images per device per batch; default 8 on CPU (larger batches fall out of
                        cache: 12 img/s at 8, 9 img/s at 32 on 2 cores) and 64 on GPU/TPU.
      mesh:             a 1-D mesh; default: every device, axis 'data'.
      precision:        'highest' (float32 everywhere, the default) or 'default' (XLA's choice:
                        faster bf16/tf32 passes on TPU/GPU, features move by ~1e-3).
    """

    def __init__(self, outputs: Sequence[str] = ("pool3",), *, batch_per_device: int | None = None,
                 mesh: Mesh | None = None, precision: str = "highest"):
        self.outputs = tuple(outputs)
        if batch_per_device is None:
            batch_per_device = 8 if jax.default_backend() == "cpu" else 64
        classifier = any(o.startswith("logits") for o in self.outputs)
        self.module, variables = load_inception(classifier, precision)
        self.mesh = mesh if mesh is not None else Mesh(np.asarray(jax.devices()), ("data",))
        self.repl = NamedSharding(self.mesh, P())
        self.data = NamedSharding(self.mesh, P("data"))
        self.batch = int(batch_per_device) * self.mesh.size
        self.variables = jax.device_put(variables, self.repl)
        # Precision is part of the cache key: on TPU/GPU 'default' moves features by ~1e-3.
        self.version = EXTRACTOR_VERSION + ("+fc" if classifier else "") + "/" + precision
        self._images_fn = jax.jit(self._features, in_shardings=(self.repl, self.data), out_shardings=self.data)
        self._gen_fns: dict = {}

    def _features(self, variables, images):
        out = self.module.apply(variables, images)
        return {k: out[k] for k in self.outputs}

    # -- helpers ------------------------------------------------------------------------------

    def _to_global(self, host: np.ndarray) -> jax.Array:
        return jax.make_array_from_callback(host.shape, self.data, lambda idx: host[idx])

    def _gather(self, tree) -> dict:
        if jax.process_count() == 1:
            return jax.device_get(tree)
        from jax.experimental import multihost_utils
        return multihost_utils.process_allgather(tree, tiled=True)

    def _pad(self, x: np.ndarray) -> np.ndarray:
        if len(x) == self.batch:
            return x
        return np.concatenate([x, np.zeros((self.batch - len(x),) + x.shape[1:], x.dtype)])

    def _pipelined(self, n: int, launch: Callable[[int], dict], progress: bool, desc: str) -> dict[str, np.ndarray]:
        """Run launch(s) for the ceil(n / batch) batches, fetching each batch's features while the
        next one computes; -> {name: float32 [n, ...]} with the padding rows dropped."""
        parts, pending, bar = [], None, _tqdm(progress, n, desc)
        for s in range(-(-n // self.batch)):
            out = launch(s)
            if pending is not None:
                parts.append(self._gather(pending))
            pending = out
            bar.update(min(self.batch, n - s * self.batch))
        parts.append(self._gather(pending))
        bar.close()
        return {k: np.concatenate([p[k] for p in parts])[:n].astype(np.float32) for k in parts[0]}

    # -- image sets -----------------------------------------------------------------------------

    def from_images(self, images: np.ndarray, *, progress: bool = False) -> dict[str, np.ndarray]:
        """uint8 [N, H, W, 1|3] (host array) -> {name: float32 [N, ...]}."""
        images = np.asarray(images)
        return self._run_batches(len(images), lambda a, b: images[a:b], progress, "features")

    def from_source(self, source, num: int | None = None, *, progress: bool = False) -> dict[str, np.ndarray]:
        """The first `num` images (default all) of a `gigajax.data` Source -> features."""
        n = len(source) if num is None else min(int(num), len(source))
        return self._run_batches(n, lambda a, b: source.images(np.arange(a, b)), progress,
                                 f"features {getattr(source, 'name', '')}")

    def _run_batches(self, n: int, read: Callable[[int, int], np.ndarray], progress: bool, desc: str):
        if n == 0:
            raise ValueError("no images to extract features from (an empty image set)")
        from gigajax.data import PrefetchIterator
        produce = lambda s: self._pad(np.asarray(read(s * self.batch, min((s + 1) * self.batch, n))))  # noqa: E731
        with PrefetchIterator(produce, 0, prefetch=2 if n > self.batch else 0) as it:
            return self._pipelined(n, lambda s: self._images_fn(self.variables, self._to_global(next(it))),
                                   progress, desc)

    # -- generators -----------------------------------------------------------------------------

    def from_generator(self, generate: Callable, params, num: int, *, z_dim: int, c_dim: int = 0,
                       seed: int = 0, class_probs: np.ndarray | None = None, sample_z: Callable | None = None,
                       progress: bool = False) -> dict[str, np.ndarray]:
        """Features of `num` generated images (module doc for the seeds).

        generate:    (params, z [B, z_dim], c [B, c_dim], key) -> images float [B, H, W, C] in [-1, 1].
                     It is traced inside one jit program with the Inception, so the generator
                     and the feature network fuse.
        params:      the generator's variables (pytree), placed replicated on the mesh.
        class_probs: [c_dim] label distribution for conditional models (default uniform);
                     NVlabs draws labels from the dataset, whose distribution this is.
        sample_z:    (key, n) -> [n, z_dim], the prior G was trained with (default N(0, I));
                     called with n=1 per sample so each sample has its own key.
        """
        if num <= 0:
            raise ValueError(f"from_generator: num={num} must be positive")
        logits = class_logits(class_probs, c_dim)
        if sample_z is None:
            sample_z = _NORMAL_Z.setdefault(z_dim, functools.partial(_normal_z, z_dim=z_dim))  # one per z_dim: jit cache key
        fn_key = (generate, sample_z, z_dim, c_dim)
        if fn_key not in self._gen_fns:
            def run(variables, params, idx, seed, logits, noise_key):
                z, c = per_index_inputs(sample_z, c_dim, idx, seed, logits)
                images = generate(params, z, c, noise_key)
                return self._features(variables, to_uint8(images))
            self._gen_fns[fn_key] = jax.jit(run, in_shardings=(self.repl, self.repl, self.data, None, None, None),
                                            out_shardings=self.data)
        fn = self._gen_fns[fn_key]
        params = jax.device_put(params, self.repl)
        noise = jax.random.key(seed + 2)

        def launch(s):
            idx = self._to_global(np.arange(s * self.batch, (s + 1) * self.batch, dtype=np.int32))
            return fn(self.variables, params, idx, np.int32(seed), logits, jax.random.fold_in(noise, s))
        return self._pipelined(num, launch, progress, "generated features")


# --------------------------------------------------------------------------------------------
# Cached dataset features
# --------------------------------------------------------------------------------------------

def _identity(spec: str) -> dict:
    """What the cache key knows about a dataset: its name, and for files their size and mtime
    (so a changed folder/zip/npz is re-extracted, never served stale)."""
    path = os.path.abspath(os.path.expanduser(spec))
    if os.path.isfile(path):
        st = os.stat(path)
        return {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if os.path.isdir(path):
        h, count = hashlib.sha256(), 0
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                st = os.stat(os.path.join(root, f))
                h.update(f"{os.path.relpath(os.path.join(root, f), path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
                count += 1
        return {"path": path, "files": count, "listing": h.hexdigest()}
    if spec in ("mnist5k", "animal-mnist"):
        from gigajax import assets
        manifest = assets.fetch(spec) / "manifest.json"
        return {"name": spec, "asset": json.loads(manifest.read_text()).get("sha256", "")}
    return {"name": spec}


def _read_cached(file: Path, outputs) -> dict | None:
    if not file.exists():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            if all(o in z.files for o in outputs):
                return {o: z[o] for o in outputs}
    except (OSError, ValueError):
        pass   # an unreadable entry is recomputed and replaced
    return None


def stats_cache_dir() -> Path:
    from gigajax.assets import cache_dir
    return cache_dir() / "metrics"


def dataset_features(spec: str, *, num: int | None = None, resolution: int | None = None,
                     extractor: FeatureExtractor | None = None, cache: bool = True,
                     progress: bool = False) -> dict[str, np.ndarray]:
    """Features of the first `num` images (default all) of dataset `spec` (any `open_source` spec:
    'mnist5k', a folder, a zip, a .npz, 'tfds:...'), cached in $GIGAJAX_CACHE/metrics.

    The cache key holds the dataset's identity (name; for files also size and mtime), the
    resolution, the count, the extractor version and its outputs. Files are written atomically
    by process 0, so an interrupted run never leaves a truncated entry.
    """
    from gigajax.data import open_source
    extractor = extractor or FeatureExtractor()
    source = open_source(spec, resolution=resolution, use_labels=False)
    try:
        n = len(source) if num is None else min(int(num), len(source))
        key = json.dumps({"dataset": _identity(spec), "resolution": source.resolution, "num": n,
                          "extractor": extractor.version, "outputs": sorted(extractor.outputs)}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in source.name)[:40]
        file = stats_cache_dir() / f"{safe}-{source.resolution}px-{n}-{digest}.npz"
        cached = _read_cached(file, extractor.outputs) if cache and jax.process_index() == 0 else None
        if jax.process_count() > 1:
            # Extraction is a collective: every process must take the same branch, and a per-host
            # cache (the default ~/.cache on a pod) only exists on some. Process 0 decides and
            # hands its cached features to the others.
            from jax.experimental import multihost_utils
            hit = bool(multihost_utils.broadcast_one_to_all(np.int32(cached is not None)))
            if hit:
                dims = jax.eval_shape(extractor._features, extractor.variables,
                                      jax.ShapeDtypeStruct((1, 75, 75, 3), jnp.uint8))
                template = cached or {o: np.zeros((n,) + dims[o].shape[1:], np.float32) for o in extractor.outputs}
                cached = {o: np.asarray(v) for o, v in multihost_utils.broadcast_one_to_all(template).items()}
        if cached is not None:
            return cached
        t0 = time.time()
        feats = extractor.from_source(source, n, progress=progress)
        if cache and jax.process_index() == 0:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp.npz")
            np.savez(tmp, key=np.asarray(key), seconds=np.float64(time.time() - t0), **feats)
            os.replace(tmp, file)
        return feats
    finally:
        source.close()
