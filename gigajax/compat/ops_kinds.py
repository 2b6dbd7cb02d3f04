"""Golden-case runners for the `ops.*` kinds (NVlabs/stylegan3 `torch_utils/ops`)."""

from __future__ import annotations

import numpy as np

from gigajax import ops
from gigajax.compat.kinds import register
from gigajax.compat.layout import nchw_to_nhwc, nhwc_to_nchw, oihw_to_hwio


def _nchw_case(fn, image="x", filters=(), weights=(), out="y"):
    """Runner for an op whose image inputs are NCHW and whose one output is an image."""
    def run(case):
        kwargs = {}
        for name, value in case.inputs.items():
            if name == image or name == "noise":
                value = nchw_to_nhwc(value)
            elif name in weights:
                value = oihw_to_hwio(value)
            kwargs[name] = value
        for name in filters:
            kwargs.setdefault(name, None)
        y = fn(**kwargs, **case.meta["call_kwargs"])
        return {out: nhwc_to_nchw(np.asarray(y))}
    return run


register("ops.upfirdn2d")(_nchw_case(ops.upfirdn2d, filters=("f",)))
register("ops.upsample2d")(_nchw_case(ops.upsample2d, filters=("f",)))
register("ops.downsample2d")(_nchw_case(ops.downsample2d, filters=("f",)))
register("ops.filter2d")(_nchw_case(ops.filter2d, filters=("f",)))
register("ops.filtered_lrelu")(_nchw_case(ops.filtered_lrelu, filters=("fu", "fd", "b")))
register("ops.conv2d_resample")(_nchw_case(ops.conv2d_resample, filters=("f",), weights=("w",)))
register("ops.modulated_conv2d")(_nchw_case(ops.modulated_conv2d, weights=("weight",)))
register("ops.stylegan3.modulated_conv2d")(_nchw_case(ops.modulated_conv2d_sg3, weights=("w",)))


@register("ops.bias_act")
def _bias_act(case):
    # Layout `any`: the op runs on the array as stored, `dim` names the bias axis.
    kw = case.meta["call_kwargs"]
    return {"y": np.asarray(ops.bias_act(case.inputs["x"], case.inputs.get("b"), **kw))}


@register("ops.setup_filter")
def _setup_filter(case):
    return {"f": ops.setup_filter(case.inputs["f_in"], **case.meta["call_kwargs"])}


@register("ops.stylegan3.design_lowpass_filter")
def _design_lowpass_filter(case):
    return {"filter": ops.design_lowpass_filter(**case.meta["call_kwargs"])}
