"""StyleGAN-XL's progressive growing schedule: the layers of a SuperresGenerator.

A superresolution stage takes a trained stem (a Generator, or a previous SuperresGenerator),
drops its trailing critically sampled layers (the ones that produce the stem's final image:
the last `num_critical` layers and ToRGB), and appends `head_layers + 1` new layers that continue
the stem's filter progression up to the new resolution. Official
`SuperresGenerator.__init__` and `compute_superres_filterparams`; static numpy arithmetic like
`gigajax.models.stylegan3.design`, whose `layer_design` builds every layer.

Quirks of the official code that trained checkpoints depend on, kept here:
- The head's first layer keeps the stem's last sampling rate and channel count, and its cutoff
  and stopband start where the stem's last kept layer ended: a layer that refines without
  upsampling, before the progression climbs.
- The progression's exponents divide by `head_layers - 2` (a hard-coded num_critical=2), while
  the head's `is_critically_sampled` flags use the stem's `num_critical`.
- Head layers are named from `len(kept stem layers) + 1`, so one index is skipped: a 6-layer
  stem keeps L0..L3 and its head starts at L5.
- Head layers get the constructor defaults for everything but `conv_kernel` and
  `use_radial_filters`: filter_size=6, lrelu_upsampling=2, conv_clamp=256, magnitude_ema_beta=0.999,
  whatever the stem used (`HEAD_LAYER_KWARGS`).
- `use_fp16` of a head layer compares its rate with the new resolution; stem layers keep theirs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gigajax.models.stylegan3.design import SynthesisDesign, layer_design, synthesis_design
from gigajax.ops._args import fail

UP_FACTORS = (2, 4, 8, 16)
# SynthesisLayer settings of every head layer (official: constructor defaults).
HEAD_LAYER_KWARGS = {"conv_clamp": 256, "magnitude_ema_beta": 0.999}
# Generator synthesis kwargs that shape the schedule, and the official defaults a head reads from the stem.
SCHEDULE_DEFAULTS = {"channel_base": 32768, "channel_max": 512, "num_layers": 14, "num_critical": 2, "margin_size": 10,
                     "last_stopband_rel": 2 ** 0.3, "num_fp16_res": 4, "conv_kernel": 3,
                     "use_radial_filters": False}
_SYNTHESIS_DESIGN_ARGS = ("channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                          "last_stopband_rel", "margin_size", "num_fp16_res", "conv_kernel", "filter_size",
                          "lrelu_upsampling", "use_radial_filters")
_STEM_LAYER_ARGS = ("conv_clamp", "magnitude_ema_beta")


@dataclasses.dataclass(frozen=True, eq=False)
class SuperresPlan:
    """Everything static about a (possibly multi-stage) SuperresGenerator.

    design: the SynthesisDesign (input layer of the base stem; kept stem layers, then heads).
    layer_kwargs: per layer (parallel to design.layers), its SynthesisLayer settings
      (`conv_clamp`, `magnitude_ema_beta`).
    head_layer_names: the layers of the last stage (what a superres stage trains).
    img_resolution: the output resolution.
    """
    design: SynthesisDesign
    layer_kwargs: tuple
    head_layer_names: tuple
    img_resolution: int

    @property
    def num_ws(self):
        return self.design.num_ws

    @property
    def stem_layer_names(self):
        return tuple(d.name for d in self.design.layers if d.name not in self.head_layer_names)


def base_plan(img_resolution, img_channels, **synthesis_kwargs) -> SuperresPlan:
    """A plain Generator's synthesis as a plan (the start of every superres chain)."""
    kw = {k: v for k, v in synthesis_kwargs.items() if k in _SYNTHESIS_DESIGN_ARGS}
    design = synthesis_design(img_resolution, img_channels, **kw)
    layer_kw = {k: synthesis_kwargs[k] for k in _STEM_LAYER_ARGS if k in synthesis_kwargs}
    return SuperresPlan(design=design, layer_kwargs=tuple(dict(layer_kw) for _ in design.layers),
                        head_layer_names=(), img_resolution=int(img_resolution))


def kept_layers(design: SynthesisDesign) -> int:
    """How many leading layers of a stem a superres stage keeps: all but the trailing critically
    sampled ones (official: the reversed walk over `layer_names` that deletes them)."""
    n = len(design.layers)
    while n and design.layers[n - 1].is_critically_sampled:
        n -= 1
    return n


def superres_stage(stem: SuperresPlan, head_layers, up_factor, *, img_channels, channel_base, channel_max, margin_size,
                   last_stopband_rel, num_critical, num_fp16_res, conv_kernel, use_radial_filters) -> SuperresPlan:
    """One official SuperresGenerator stage on top of `stem`; the keyword arguments are the base
    stem synthesis network's (a stage reads them from `G_stem.synthesis`, which every stage shares)."""
    if up_factor not in UP_FACTORS:
        fail("up_factor", up_factor, f"one of {UP_FACTORS}")
    if isinstance(head_layers, bool) or not isinstance(head_layers, (int, np.integer)) or head_layers < 3:
        # The official progression divides by head_layers - 2: 2 gives a division by zero, 1 a
        # negative exponent.
        fail("head_layers", head_layers, "an integer >= 3")
    keep = kept_layers(stem.design)
    if keep == 0:
        fail("stem", f"{len(stem.design.layers)} layers, all critically sampled", "at least one layer to keep")
    last = stem.design.layers[keep - 1]
    img_resolution = stem.img_resolution * up_factor

    first_cutoff = last.out_cutoff
    first_stopband = last.out_half_width + first_cutoff
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(head_layers + 1) / (head_layers - 2), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    rates[0] = last.out_sampling_rate
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[0] = last.out_channels
    channels[-1] = img_channels
    if int(sizes[0]) != last.out_size[0]:
        # The head's first layer expects the stem's margin-padded size; a stem whose last kept
        # layer already has the image size (num_critical=0) does not produce it.
        fail("stem", f"last kept layer {last.name} of size {last.out_size[0]}",
             f"size {int(sizes[0])} = sampling rate + 2 * margin_size (num_critical >= 1)")

    first_index = keep + 1  # the official names count from len(kept) + 1
    heads = []
    for idx in range(head_layers + 1):
        prev = max(idx - 1, 0)
        heads.append(layer_design(
            name=f"L{idx + first_index}_{int(sizes[idx])}_{int(channels[idx])}",
            in_channels=int(channels[prev]), out_channels=int(channels[idx]), in_size=int(sizes[prev]),
            out_size=int(sizes[idx]), in_sampling_rate=int(rates[prev]), out_sampling_rate=int(rates[idx]),
            in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx], in_half_width=half_widths[prev],
            out_half_width=half_widths[idx], is_torgb=idx == head_layers,
            is_critically_sampled=idx >= head_layers - num_critical,
            use_fp16=bool(rates[idx] * 2 ** num_fp16_res > img_resolution), conv_kernel=conv_kernel,
            use_radial_filters=use_radial_filters))
    design = dataclasses.replace(stem.design, layers=stem.design.layers[:keep] + tuple(heads))
    layer_kwargs = stem.layer_kwargs[:keep] + tuple(dict(HEAD_LAYER_KWARGS) for _ in heads)
    return SuperresPlan(design=design, layer_kwargs=layer_kwargs, head_layer_names=tuple(d.name for d in heads),
                        img_resolution=int(img_resolution))


def superres_plan(stem_kwargs, stages) -> SuperresPlan:
    """The plan of a base Generator (official constructor kwargs `stem_kwargs`: img_resolution,
    img_channels and its synthesis kwargs; z_dim etc. are ignored) grown by `stages`, a sequence of
    `(head_layers, up_factor)`, one per SuperresGenerator built on the previous one."""
    synthesis = {k: v for k, v in stem_kwargs.items()
                 if k not in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")}
    plan = base_plan(stem_kwargs["img_resolution"], stem_kwargs["img_channels"], **synthesis)
    shared = {k: synthesis.get(k, v) for k, v in SCHEDULE_DEFAULTS.items() if k != "num_layers"}
    for head_layers, up_factor in stages:
        plan = superres_stage(plan, head_layers, up_factor, img_channels=stem_kwargs["img_channels"], **shared)
    return plan
