"""Named metrics of a generator against a dataset, the way StyleGAN2-ADA / StyleGAN3 name them.

    results = compute_metrics(["fid10k", "kid10k"], GeneratorSpec(generate, params, z_dim=128),
                              dataset="mnist5k")     # -> {'fid10k': 12.3, 'kid10k': 0.004}

Names (N in thousands; NVlabs' names are all valid):
  fid{N}k       FID, N generated vs the first N real images (all if fewer);
  fid{N}k_full  FID, N generated vs the whole dataset;
  kid{N}k[_full]  KID (100 subsets of at most 1000);
  pr{N}k{K}[_full]  improved precision and recall with K neighbours -> '<name>_precision', '_recall'.
                NOTE: on Inception pool3 features; NVlabs' pr50k3 uses VGG16 features, so the
                numbers are not comparable with StyleGAN2-ADA/3 paper tables;
  is{N}k        Inception Score, 10 splits -> '<name>_mean', '<name>_std' (needs the
                `inception-classifier` asset);
  ppl_{z|w}{full|end}, ppl2_wend   PPL with 50k samples (ppl2: no face crop; the others crop as
                StyleGAN v1's FFHQ metric did);
  eqt{N}k_int, eqt{N}k_frac, eqr{N}k   StyleGAN3's equivariance PSNRs in dB (EQ-T, EQ-T_frac,
                EQ-R; NVlabs': eqt50k_int, eqt50k_frac, eqr50k), batches of 4 as NVlabs; need
                `GeneratorSpec.mapping` and `.synthesis_t` (see `gigajax.metrics.equivariance`) and
                no dataset. Those with the same N share one sampling loop (one reference image per
                latent for all of them);
  swd{N}k       ProGAN's sliced Wasserstein distance x 1e3 on Laplacian-pyramid patches, N generated
                vs N real images drawn at random without replacement (seeded; whole passes over
                the dataset in fresh orders if it has fewer, since SWD compares equally many
                descriptors) -- random as ProGAN's shuffled reals, not the first N as for fid: a
                class-sorted dataset (mnist5k is) would bias a prefix -> '<name>' = the mean over
                levels, '<name>_<res>' per level
                (the image size down to 16; official 'SWDx1e3_<res>', 'SWDx1e3_avg'). The official
                `metric-swd-16k` uses 16384 images: swd16.384k (see `gigajax.metrics.swd`);
  msssim{N}k    ProGAN's diversity score: mean MS-SSIM over the N/2 pairs (0, 1), (2, 3), ... of N
                generated images (N even; official `metric-msssim-20k` = 10,000 pairs); no dataset
                (see `gigajax.metrics.ms_ssim`).
Generated features are computed once per count and shared by the metrics that need them; real
features come from the on-disk cache (`dataset_features`). swd and msssim work on the uint8 images
themselves (generated from the same per-index seeds as the features), on one device per process.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Callable, Sequence

import jax
import numpy as np

_FEATURE_METRIC = re.compile(r"^(fid|kid|is|pr)(\d+(?:\.\d+)?)k(\d*)(_full)?$")
_PPL_METRIC = re.compile(r"^ppl(2?)_([zw])(full|end)$")
_EQ_METRIC = re.compile(r"^eq(?:t(\d+(?:\.\d+)?)k_(int|frac)|r(\d+(?:\.\d+)?)k)$")
_EQ_BATCH = 4          # NVlabs' batch size: one random transform per batch
_PROGAN_METRIC = re.compile(r"^(swd|msssim)(\d+(?:\.\d+)?)k$")


@dataclasses.dataclass
class GeneratorSpec:
    """What the metrics need to know about a generator.

    generate:  (params, z [B, z_dim], c [B, c_dim], key) -> images float [B, H, W, C] in [-1, 1].
    mapping, synthesis: optional split for PPL (see `gigajax.metrics.ppl`); without them PPL
               runs in z space with synthesis = generate.
    synthesis_t: (params, w, c, transform [3, 3]) -> images float [B, H, W, C] in [-1, 1], for the
               equivariance metrics: w from `mapping`, 'const' noise, and `transform` with the
               meaning of StyleGAN3's `G.synthesis.input.transform` buffer (the image at p shows the
               input features at A p + b, p in image widths from the centre; one matrix for the
               whole batch; see `gigajax.metrics.equivariance`). None: eqt*/eqr* raise ValueError.
    class_probs: label distribution for conditional sampling (default uniform; the trainer passes
               the dataset's, as NVlabs samples labels from the dataset).
    sample_z:  (key, n) -> [n, z_dim], G's latent prior (default N(0, I); BEGAN uses U(-1, 1)).
    """
    generate: Callable
    params: Any
    z_dim: int
    c_dim: int = 0
    mapping: Callable | None = None
    synthesis: Callable | None = None
    class_probs: np.ndarray | None = None
    sample_z: Callable | None = None
    synthesis_t: Callable | None = None


_EXTRACTORS: dict = {}


def _extractor(outputs, batch_per_device):
    """One FeatureExtractor per configuration per process: its compiled programs (including the
    fused generator + Inception one) survive from one training snapshot to the next."""
    from gigajax.metrics.features import FeatureExtractor
    key = (tuple(outputs), batch_per_device, tuple(d.id for d in jax.devices()))
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = FeatureExtractor(outputs, batch_per_device=batch_per_device)
    return _EXTRACTORS[key]


@dataclasses.dataclass(frozen=True)
class MetricName:
    name: str
    kind: str          # fid | kid | is | pr | ppl | eqt_int | eqt_frac | eqr | swd | msssim
    num_gen: int = 0
    full: bool = False
    k: int = 3
    space: str = "w"
    sampling: str = "end"
    crop: bool = False


def parse_metric(name: str) -> MetricName:
    """'fid50k_full' -> MetricName(...); ValueError naming the valid forms otherwise."""
    m = _FEATURE_METRIC.match(name)
    if m:
        kind, count, k, full = m.groups()
        num = int(round(float(count) * 1000))
        if num < 2 or (k and kind != "pr") or (full and kind == "is"):
            m = None
        else:
            return MetricName(name, kind, num, bool(full), int(k) if k else 3)
    p = _PPL_METRIC.match(name)
    if p:
        two, space, sampling = p.groups()
        return MetricName(name, "ppl", 50_000, space=space, sampling=sampling, crop=not two)
    e = _EQ_METRIC.match(name)
    if e:
        t_count, t_kind, r_count = e.groups()
        num = int(round(float(t_count or r_count) * 1000))
        if num >= 1:
            return MetricName(name, f"eqt_{t_kind}" if t_count else "eqr", num)
    g = _PROGAN_METRIC.match(name)
    if g:
        kind, count = g.groups()
        num = int(round(float(count) * 1000))
        if num >= 2 and (kind == "swd" or num % 2 == 0):     # msssim pairs its images
            return MetricName(name, kind, num)
    raise ValueError(f"unknown metric {name!r}: expected fid<N>k[_full], kid<N>k[_full], pr<N>k<K>[_full], "
                     f"is<N>k, ppl[2]_<z|w><full|end>, eqt<N>k_<int|frac>, eqr<N>k, swd<N>k or msssim<N>k "
                     f"(N images, even) (e.g. fid10k, fid50k_full, kid50k, pr50k3, is50k, ppl2_wend, eqt50k_int, "
                     f"eqr50k, swd16k, msssim20k)")


_IMAGE_FNS: dict = {}


def _image_fn(gen: GeneratorSpec):
    """jit(params, idx [B], seed, class logits, noise key) -> uint8 [B, H, W, C]: image i from the
    per-index seeds of `FeatureExtractor.from_generator` (module doc of `features`), so swd/msssim
    see the images fid scores. One program per generator per process, kept across snapshots."""
    from gigajax.metrics.features import _normal_z, per_index_inputs, to_uint8
    key = (gen.generate, gen.sample_z, gen.z_dim, gen.c_dim)
    if key not in _IMAGE_FNS:
        sample_z = gen.sample_z or functools.partial(_normal_z, z_dim=gen.z_dim)
        c_dim, generate = gen.c_dim, gen.generate

        def run(params, idx, seed, logits, noise_key):
            z, c = per_index_inputs(sample_z, c_dim, idx, seed, logits)
            return to_uint8(generate(params, z, c, noise_key))
        _IMAGE_FNS[key] = jax.jit(run)
    return _IMAGE_FNS[key]


def generated_images(gen: GeneratorSpec, num: int, *, seed: int = 0, batch: int = 16, progress: bool = False):
    """Yield `num` generated images as host uint8 [b, H, W, C] batches of `batch` (the last one
    shorter), in index order; the next batch computes while the caller works on this one. Per-pixel
    noise comes from fold_in(key(seed + 2), batch number)."""
    from gigajax.metrics.features import _tqdm, class_logits
    fn, logits = _image_fn(gen), class_logits(gen.class_probs, gen.c_dim)
    noise = jax.random.key(seed + 2)
    launch = lambda s: fn(gen.params, np.arange(s * batch, (s + 1) * batch, dtype=np.int32),  # noqa: E731
                          np.int32(seed), logits, jax.random.fold_in(noise, s))
    steps, bar = -(-num // batch), _tqdm(progress, num, "generated images")
    pending = launch(0)
    for s in range(steps):
        current, pending = pending, (launch(s + 1) if s + 1 < steps else None)
        out = np.asarray(current)[:min(batch, num - s * batch)]     # the padded tail is dropped
        bar.update(len(out))
        yield out
    bar.close()


def _random_dataset_images(source, num: int, batch: int, seed: int):
    """Yield `num` images of `source` in batches: a random permutation from RandomState([seed, 2]),
    followed by further permutations while more are needed."""
    rng = np.random.RandomState([seed, 2])
    order = np.concatenate([rng.permutation(len(source)) for _ in range(-(-num // len(source)))])[:num]
    for a in range(0, num, batch):
        yield source.images(order[a:a + batch])


def _image_batch(batch_per_device: int | None) -> int:
    """Images per generator call for swd/msssim (one device): even, so msssim pairs never straddle."""
    b = batch_per_device or (16 if jax.default_backend() == "cpu" else 64)
    return b + b % 2


def compute_metrics(names: Sequence[str], gen: GeneratorSpec, dataset: str | None = None, *,
                    resolution: int | None = None, seed: int = 0, batch_per_device: int | None = None,
                    progress: bool = False) -> dict[str, float]:
    """Evaluate `names` (module doc) -> {result name: value}."""
    from gigajax.metrics.features import dataset_features
    from gigajax.metrics.fid import fid_from_features
    from gigajax.metrics.inception_score import inception_score
    from gigajax.metrics.kid import kernel_inception_distance
    from gigajax.metrics.equivariance import EQ_KINDS
    from gigajax.metrics.precision_recall import precision_recall

    parsed = [parse_metric(n) for n in names]
    if dataset is None and any(p.kind in ("fid", "kid", "pr", "swd") for p in parsed):
        raise ValueError(f"metrics {list(names)} compare with real images: pass dataset=")
    eq_names = [p.name for p in parsed if p.kind in EQ_KINDS]
    if eq_names and (gen.synthesis_t is None or gen.mapping is None):
        raise ValueError(f"cannot compute {eq_names}: the generator does not support user-specified image "
                         f"transformations (GeneratorSpec needs mapping and synthesis_t)")
    need_logits = any(p.kind == "is" for p in parsed)
    outputs = ("pool3", "logits_unbiased") if need_logits else ("pool3",)
    # Built on first use: PPL and the equivariance metrics need no Inception.
    extractor = lambda: _extractor(outputs, batch_per_device)        # noqa: E731
    pool_only = lambda: _extractor(("pool3",), batch_per_device)     # noqa: E731
    eq_cache: dict[int, dict] = {}
    gen_cache: dict[int, dict] = {}
    real_cache: dict = {}

    def fake(n):
        if n not in gen_cache:
            # A larger cached set's prefix is the same images (per-index seeds), so reuse it.
            bigger = [k for k in gen_cache if k >= n]
            if bigger:
                return {k: v[:n] for k, v in gen_cache[min(bigger)].items()}
            gen_cache[n] = extractor().from_generator(gen.generate, gen.params, n, z_dim=gen.z_dim, c_dim=gen.c_dim,
                                                      seed=seed, class_probs=gen.class_probs, sample_z=gen.sample_z,
                                                      progress=progress)
        return gen_cache[n]

    def real(p):
        num = None if p.full else p.num_gen
        if num not in real_cache:
            real_cache[num] = dataset_features(dataset, num=num, resolution=resolution, extractor=pool_only(),
                                               progress=progress)["pool3"]
        return real_cache[num]

    def equivariance(n):
        if n not in eq_cache:    # every eq metric of this count in one loop
            from gigajax.metrics.equivariance import equivariance_psnr
            kinds = {p.kind for p in parsed if p.kind in EQ_KINDS and p.num_gen == n}
            eq_cache[n] = equivariance_psnr(
                gen.mapping, gen.synthesis_t, gen.params, num_samples=n, batch_size=_EQ_BATCH,
                key=jax.random.key(seed), z_dim=gen.z_dim, c_dim=gen.c_dim, class_probs=gen.class_probs,
                eqt_int="eqt_int" in kinds, eqt_frac="eqt_frac" in kinds, eqr="eqr" in kinds,
                sample_z=gen.sample_z, progress=progress)
        return eq_cache[n]

    batch = _image_batch(batch_per_device)

    def sliced_wasserstein(n):
        """{resolution: SWD x 1e3} of n generated vs n real images; patch centres and directions
        from `seed` (the same centres for both sets)."""
        from gigajax.data import open_source
        from gigajax.metrics.swd import swd_descriptors, swd_from_descriptors
        with open_source(dataset, resolution=resolution, use_labels=False) as source:
            res_real, real_desc = swd_descriptors(_random_dataset_images(source, n, batch, seed), n, seed=seed)
        res_fake, fake_desc = swd_descriptors(generated_images(gen, n, seed=seed, batch=batch, progress=progress), n,
                                              seed=seed)
        if res_fake != res_real:
            raise ValueError(f"swd: the generator makes {res_fake[0]}x{res_fake[0]} images but dataset {dataset!r} "
                             f"holds {res_real[0]}x{res_real[0]} ones (pass resolution=)")
        return swd_from_descriptors(real_desc, fake_desc, res_real, seed=seed)

    gen_counts = [p.num_gen for p in parsed if p.kind in ("fid", "kid", "pr", "is")]
    if gen_counts:
        fake(max(gen_counts))     # generate the largest set first: the smaller ones are its prefix
    results: dict[str, float] = {}
    for p in parsed:
        if p.kind == "fid":
            results[p.name] = fid_from_features(real(p), fake(p.num_gen)["pool3"])
        elif p.kind == "kid":
            results[p.name] = kernel_inception_distance(real(p), fake(p.num_gen)["pool3"], seed=seed)
        elif p.kind == "pr":
            pr, rc = precision_recall(real(p), fake(p.num_gen)["pool3"], k=p.k)
            results[p.name + "_precision"], results[p.name + "_recall"] = pr, rc
        elif p.kind == "is":
            mean, std = inception_score(fake(p.num_gen)["logits_unbiased"])
            results[p.name + "_mean"], results[p.name + "_std"] = mean, std
        elif p.kind in EQ_KINDS:
            results[p.name] = equivariance(p.num_gen)[p.kind]
        elif p.kind == "swd":
            per_level = sliced_wasserstein(p.num_gen)
            results[p.name] = float(np.mean(list(per_level.values())))
            results.update({f"{p.name}_{res}": v for res, v in per_level.items()})
        elif p.kind == "msssim":
            from gigajax.metrics.ms_ssim import ms_ssim_pairs
            scores = [np.asarray(ms_ssim_pairs(b)) for b in generated_images(gen, p.num_gen, seed=seed, batch=batch,
                                                                             progress=progress)]
            results[p.name] = float(np.concatenate(scores).astype(np.float64).mean())
        else:
            from gigajax.metrics.ppl import perceptual_path_length
            synthesis = gen.synthesis or gen.generate
            results[p.name] = perceptual_path_length(
                gen.mapping, synthesis, gen.params, z_dim=gen.z_dim, c_dim=gen.c_dim, num_samples=p.num_gen,
                space=p.space, sampling=p.sampling, crop=p.crop, seed=seed,
                class_probs=gen.class_probs, sample_z=gen.sample_z, progress=progress)
    return results
