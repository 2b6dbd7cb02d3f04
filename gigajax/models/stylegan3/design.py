"""StyleGAN3's layer schedule (alias-free GAN, sec. 3 and appendix F): per layer cutoff f_c,
stopband f_t, sampling rate s, transition half-width f_h, size, channels, and the up/down FIR
filters of its filtered leaky ReLU.

Everything here is static numpy arithmetic, shared by the synthesis network, the converter (which
checks the official `up_filter`/`down_filter` buffers against it) and the benchmarks.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from gigajax.ops import design_lowpass_filter
from gigajax.ops._args import fail


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: the filter arrays are not hashable
class LayerDesign:
    """One SynthesisLayer's static design (sizes are `[width, height]`, as in the official code)."""
    name: str                       # official module name, 'L{idx}_{out_size}_{out_channels}'
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: tuple
    out_size: tuple
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple                  # [x0, x1, y0, y1] of filtered_lrelu, on the upsampled image
    up_filter: Optional[np.ndarray]     # [taps] or None (identity)
    down_filter: Optional[np.ndarray]   # [taps], [taps, taps] (radial) or None


def layer_design(*, in_channels, out_channels, in_size, out_size, in_sampling_rate, out_sampling_rate,
                 in_cutoff, out_cutoff, in_half_width, out_half_width, is_torgb, is_critically_sampled,
                 use_fp16=False, conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False,
                 name="") -> LayerDesign:
    """Derived constants of one layer (the official SynthesisLayer constructor's arithmetic).

    The nonlinearity runs at `tmp_sampling_rate` = max(in, out) * lrelu_upsampling (1 for ToRGB);
    filters are `filter_size` taps per lower-rate sample; the padding centres the kernels on
    the symmetric sample positions of appendix C.3.
    """
    tmp_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
    up = int(np.rint(tmp_rate / in_sampling_rate))
    down = int(np.rint(tmp_rate / out_sampling_rate))
    if in_sampling_rate * up != tmp_rate or out_sampling_rate * down != tmp_rate:
        fail("sampling rates", (in_sampling_rate, out_sampling_rate), "integer ratios to the activation rate")
    kernel = 1 if is_torgb else conv_kernel
    up_taps = filter_size * up if up > 1 and not is_torgb else 1
    down_taps = filter_size * down if down > 1 and not is_torgb else 1
    down_radial = bool(use_radial_filters and not is_critically_sampled)
    up_filter = design_lowpass_filter(up_taps, in_cutoff, in_half_width * 2, tmp_rate)
    down_filter = design_lowpass_filter(down_taps, out_cutoff, out_half_width * 2, tmp_rate, radial=down_radial)
    in_size = np.broadcast_to(np.asarray(in_size), [2])
    out_size = np.broadcast_to(np.asarray(out_size), [2])
    pad_total = (out_size - 1) * down + 1 - (in_size + kernel - 1) * up + up_taps + down_taps - 2
    pad_lo = (pad_total + up) // 2
    pad_hi = pad_total - pad_lo
    return LayerDesign(
        name=name, is_torgb=is_torgb, is_critically_sampled=is_critically_sampled, use_fp16=bool(use_fp16),
        in_channels=int(in_channels), out_channels=int(out_channels),
        in_size=tuple(int(v) for v in in_size), out_size=tuple(int(v) for v in out_size),
        in_sampling_rate=int(in_sampling_rate), out_sampling_rate=int(out_sampling_rate),
        in_cutoff=float(in_cutoff), out_cutoff=float(out_cutoff), in_half_width=float(in_half_width),
        out_half_width=float(out_half_width), conv_kernel=kernel, up_factor=up, down_factor=down,
        up_taps=up_taps, down_taps=down_taps, down_radial=down_radial,
        padding=(int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])),
        up_filter=up_filter, down_filter=down_filter)


@dataclasses.dataclass(frozen=True, eq=False)
class SynthesisDesign:
    """The input layer's spec and every SynthesisLayer's design, first to last (ToRGB)."""
    input_channels: int
    input_size: int
    input_sampling_rate: float
    input_bandwidth: float
    layers: tuple

    @property
    def num_ws(self):
        return len(self.layers) + 1


def synthesis_design(img_resolution, img_channels, channel_base=32768, channel_max=512, num_layers=14,
                     num_critical=2, first_cutoff=2, first_stopband=2 ** 2.1, last_stopband_rel=2 ** 0.3,
                     margin_size=10, num_fp16_res=4, conv_kernel=3, filter_size=6, lrelu_upsampling=2,
                     use_radial_filters=False) -> SynthesisDesign:
    """The geometric progression of cutoffs and stopbands from `first_*` to the last layer's
    Nyquist-limited values, reached `num_critical` layers before the end (official SynthesisNetwork)."""
    if not (isinstance(img_resolution, (int, np.integer)) and img_resolution >= 4):
        fail("img_resolution", img_resolution, "an integer >= 4")
    if not (isinstance(num_layers, (int, np.integer)) and num_layers > num_critical >= 0):
        fail("num_layers", num_layers, f"an integer > num_critical={num_critical}")
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        kw = dict(in_channels=int(channels[prev]), out_channels=int(channels[idx]), in_size=int(sizes[prev]),
                  out_size=int(sizes[idx]), in_sampling_rate=int(rates[prev]), out_sampling_rate=int(rates[idx]),
                  in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx], in_half_width=half_widths[prev],
                  out_half_width=half_widths[idx], is_torgb=idx == num_layers,
                  is_critically_sampled=idx >= num_layers - num_critical,
                  use_fp16=bool(rates[idx] * 2 ** num_fp16_res > img_resolution), conv_kernel=conv_kernel,
                  filter_size=filter_size, lrelu_upsampling=lrelu_upsampling, use_radial_filters=use_radial_filters)
        layers.append(layer_design(name=f"L{idx}_{int(sizes[idx])}_{int(channels[idx])}", **kw))
    return SynthesisDesign(input_channels=int(channels[0]), input_size=int(sizes[0]),
                           input_sampling_rate=float(rates[0]), input_bandwidth=float(cutoffs[0]),
                           layers=tuple(layers))
