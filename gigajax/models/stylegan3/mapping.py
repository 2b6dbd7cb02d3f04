"""StyleGAN3's mapping network: StyleGAN2's with two layers by default.

The official `networks_stylegan3.MappingNetwork` is the StyleGAN2 one restricted to
`embed_features = layer_features = w_dim`, which is what StyleGAN2's defaults give.
"""

from __future__ import annotations

from gigajax.models.stylegan2.mapping import MappingNetwork as _StyleGAN2Mapping


class MappingNetwork(_StyleGAN2Mapping):
    """z `[N, z_dim]`, c `[N, c_dim]` -> ws `[N, num_ws, w_dim]`; see the StyleGAN2 MappingNetwork.
    Official StyleGAN3 arguments: z_dim, c_dim, w_dim, num_ws, num_layers=2, lr_multiplier=0.01,
    w_avg_beta=0.998."""
    num_layers: int = 2
