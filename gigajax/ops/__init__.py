"""Pure jnp image ops in NHWC: FIR filters, upfirdn2d, bias_act, resampling and modulated
convolutions, filtered leaky ReLU (XLA path, and fused Pallas kernels for GPU), torch-style
bilinear resizing.
jit/vmap/grad-safe; imports nothing else from gigajax."""

from gigajax.ops.bias_act import ACTIVATIONS, bias_act
from gigajax.ops.conv2d_resample import conv2d_resample
from gigajax.ops.depthwise_conv2d import depthwise_conv2d
from gigajax.ops.filtered_lrelu import filtered_lrelu
from gigajax.ops.filtered_lrelu_pallas import filtered_lrelu_pallas
from gigajax.ops.filters import design_lowpass_filter, setup_filter
from gigajax.ops.modulated_conv2d import modulated_conv2d, modulated_conv2d_sg3
from gigajax.ops.resize import resize_bilinear
from gigajax.ops.upfirdn2d import downsample2d, filter2d, upfirdn2d, upsample2d

__all__ = [
    "ACTIVATIONS", "bias_act", "conv2d_resample", "depthwise_conv2d", "design_lowpass_filter", "downsample2d", "filter2d",
    "filtered_lrelu", "filtered_lrelu_pallas", "modulated_conv2d", "modulated_conv2d_sg3", "resize_bilinear", "setup_filter", "upfirdn2d",
    "upsample2d",
]
