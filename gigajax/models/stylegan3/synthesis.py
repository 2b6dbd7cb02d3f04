"""StyleGAN3 synthesis network and generator (Karras et al. 2021, "Alias-Free Generative
Adversarial Networks"), NHWC.

ws layout: ws[:, 0] drives the input layer's learned transform and ws[:, i + 1] layer L{i}, so
num_ws = num_layers + 2.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax.numpy as jnp

from gigajax.models.stylegan3.design import synthesis_design
from gigajax.models.stylegan3.mapping import MappingNetwork
from gigajax.models.stylegan3.synthesis_input import SynthesisInput
from gigajax.models.stylegan3.synthesis_layer import SynthesisLayer
from gigajax.ops._args import fail

# SynthesisNetwork arguments that shape the layer schedule (everything else goes to the layers).
_DESIGN_ARGS = ("channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                "last_stopband_rel", "margin_size", "num_fp16_res", "conv_kernel", "filter_size",
                "lrelu_upsampling", "use_radial_filters")
_LAYER_ARGS = ("conv_clamp", "magnitude_ema_beta", "filtered_lrelu_impl")


class SynthesisNetwork(nn.Module):
    """ws `[N, num_ws, w_dim]` -> img `[N, img_resolution, img_resolution, img_channels]` (float32).

    Submodules `input` (SynthesisInput) and `L{idx}_{size}_{channels}` (SynthesisLayer), the
    official names. `kwargs` holds the official constructor arguments (channel_base=32768,
    channel_max=512, num_layers=14, num_critical=2, first_cutoff=2, first_stopband=2**2.1,
    last_stopband_rel=2**0.3, margin_size=10, output_scale=0.25, num_fp16_res=4, conv_kernel=3,
    filter_size=6, lrelu_upsampling=2, use_radial_filters=False, conv_clamp=256,
    magnitude_ema_beta=0.999) plus `compute_dtype` (the dtype of the official fp16 layers; None =
    float32) and `filtered_lrelu_impl` ('auto' | 'xla' | 'pallas'). `SynthesisNetwork.create(...)`
    takes them flat.

    Call: `(ws, transform=None, noise_mode='random', force_fp32=False, update_emas=False)`;
    `transform` overrides the input layer's `transform` buffer (see SynthesisInput).
    """
    w_dim: int
    img_resolution: int
    img_channels: int
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def create(cls, w_dim, img_resolution, img_channels, name=None, **kwargs):
        known = set(_DESIGN_ARGS) | set(_LAYER_ARGS) | {"output_scale", "compute_dtype"}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            fail("SynthesisNetwork kwargs", unknown, f"names among {sorted(known)}")
        return cls(w_dim, img_resolution, img_channels, dict(kwargs), name=name)

    def design(self):
        kw = {k: v for k, v in self.kwargs.items() if k in _DESIGN_ARGS}
        return synthesis_design(self.img_resolution, self.img_channels, **kw)

    @property
    def num_ws(self):
        return self.design().num_ws

    @nn.compact
    def __call__(self, ws, transform=None, noise_mode="random", force_fp32=False, update_emas=False):
        design = self.design()
        if ws.ndim != 3 or ws.shape[1:] != (design.num_ws, self.w_dim):
            fail("ws.shape", tuple(ws.shape), f"[N, num_ws={design.num_ws}, w_dim={self.w_dim}]")
        ws = ws.astype(jnp.float32)
        x = SynthesisInput(self.w_dim, design.input_channels, design.input_size, design.input_sampling_rate,
                           design.input_bandwidth, name="input")(ws[:, 0], transform=transform)
        layer_kw = {k: v for k, v in self.kwargs.items() if k in _LAYER_ARGS}
        for idx, d in enumerate(design.layers):
            layer = SynthesisLayer(self.w_dim, d, compute_dtype=self.kwargs.get("compute_dtype"), name=d.name,
                                   **layer_kw)
            x = layer(x, ws[:, idx + 1], noise_mode=noise_mode, force_fp32=force_fp32, update_emas=update_emas)
        scale = self.kwargs.get("output_scale", 0.25)
        if scale != 1:
            x = x * scale
        return x.astype(jnp.float32)


class Generator(nn.Module):
    """z `[N, z_dim]`, c `[N, c_dim]` -> img `[N, img_resolution, img_resolution, img_channels]`.

    `Generator.create(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={},
    **synthesis_kwargs)` takes the official constructor arguments flat. Entry points (through
    `apply`): `__call__(z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False,
    **synthesis_kwargs)`; `method='map'` -> ws `[N, num_ws, w_dim]`; `method='synthesize'`:
    `(ws, **synthesis_kwargs)` -> img. Variables: 'params' and 'buffers' (mapping.w_avg,
    synthesis.input.{freqs, phases, transform}, synthesis.L*.magnitude_ema).
    """
    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    mapping_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    synthesis_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def create(cls, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=None, name=None,
               **synthesis_kwargs):
        SynthesisNetwork.create(w_dim, img_resolution, img_channels, **synthesis_kwargs)  # validates names
        return cls(z_dim, c_dim, w_dim, img_resolution, img_channels, dict(mapping_kwargs or {}),
                   dict(synthesis_kwargs), name=name)

    def setup(self):
        self.synthesis = SynthesisNetwork.create(self.w_dim, self.img_resolution, self.img_channels,
                                                 **self.synthesis_kwargs)
        self.mapping = MappingNetwork(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
                                      **self.mapping_kwargs)

    def design(self):
        """The synthesis network's static layer schedule (`SynthesisDesign`)."""
        kw = {k: v for k, v in self.synthesis_kwargs.items() if k in _DESIGN_ARGS}
        return synthesis_design(self.img_resolution, self.img_channels, **kw)

    @property
    def num_ws(self):
        return self.design().num_ws

    def map(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        return self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                            update_emas=update_emas)

    def synthesize(self, ws, **synthesis_kwargs):
        return self.synthesis(ws, **synthesis_kwargs)

    def __call__(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.map(z, c, truncation_psi, truncation_cutoff, update_emas)
        return self.synthesize(ws, update_emas=update_emas, **synthesis_kwargs)
