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
                latent for all of them).
Generated features are computed once per count and shared by the metrics that need them; real
features come from the on-disk cache (`dataset_features`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Sequence

import jax
import numpy as np

_FEATURE_METRIC = re.compile(r"^(fid|kid|is|pr)(\d+(?:\.\d+)?)k(\d*)(_full)?$")
_PPL_METRIC = re.compile(r"^ppl(2?)_([zw])(full|end)$")
_EQ_METRIC = re.compile(r"^eq(?:t(\d+(?:\.\d+)?)k_(int|frac)|r(\d+(?:\.\d+)?)k)$")
_EQ_BATCH = 4          # NVlabs' batch size: one random transform per batch


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
    kind: str          # fid | kid | is | pr | ppl | eqt_int | eqt_frac | eqr
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
    raise ValueError(f"unknown metric {name!r}: expected fid<N>k[_full], kid<N>k[_full], pr<N>k<K>[_full], "
                     f"is<N>k, ppl[2]_<z|w><full|end>, eqt<N>k_<int|frac> or eqr<N>k (e.g. fid10k, "
                     f"fid50k_full, kid50k, pr50k3, is50k, ppl2_wend, eqt50k_int, eqr50k)")


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
    if dataset is None and any(p.kind in ("fid", "kid", "pr") for p in parsed):
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
        else:
            from gigajax.metrics.ppl import perceptual_path_length
            synthesis = gen.synthesis or gen.generate
            results[p.name] = perceptual_path_length(
                gen.mapping, synthesis, gen.params, z_dim=gen.z_dim, c_dim=gen.c_dim, num_samples=p.num_gen,
                space=p.space, sampling=p.sampling, crop=p.crop, seed=seed,
                class_probs=gen.class_probs, sample_z=gen.sample_z, progress=progress)
    return results
