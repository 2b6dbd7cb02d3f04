"""StyleGAN3 (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"), with the
architecture, argument names and numerics of NVlabs' `training/networks_stylegan3.py`.

Differences of form, not of function:
- NHWC activations, HWIO conv kernels, `[in, out]` dense weights
  (`gigajax.compat.stylegan3_convert` maps official state_dicts both ways).
- Buffers (`w_avg`, `magnitude_ema`, the input layer's `freqs`, `phases`, `transform`) live in
  the 'buffers' collection. The up/down filters are trace-time constants designed from the
  layer schedule (`design.py`), not variables; the converter checks official ones against them.
- `num_fp16_res` selects the layers that run in `compute_dtype` (None = float32, as the official
  code does off-GPU).
- The synthesis call takes an optional `transform` that overrides the `transform` buffer, so
  equivariance metrics can move the image without mutating state.
The discriminator is StyleGAN2's (`gigajax.models.stylegan2.Discriminator`), as in the paper.
"""

from gigajax.models.stylegan3.design import LayerDesign, SynthesisDesign, layer_design, synthesis_design
from gigajax.models.stylegan3.mapping import MappingNetwork
from gigajax.models.stylegan3.synthesis import Generator, SynthesisNetwork
from gigajax.models.stylegan3.synthesis_input import SynthesisInput
from gigajax.models.stylegan3.synthesis_layer import SynthesisLayer

__all__ = ["Generator", "LayerDesign", "MappingNetwork", "SynthesisDesign", "SynthesisInput", "SynthesisLayer",
           "SynthesisNetwork", "layer_design", "synthesis_design"]
