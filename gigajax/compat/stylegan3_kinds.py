"""Golden-case runners for the `stylegan3.*` kinds (NVlabs/stylegan3 `training/networks_stylegan3.py`)."""

from __future__ import annotations

import jax
import numpy as np

from gigajax.compat.kinds import register
from gigajax.compat.layout import nhwc_to_nchw
from gigajax.compat.stylegan3_convert import design_filters, official_to_variables
from gigajax.models.stylegan3 import Generator, MappingNetwork


def _labels(c, c_dim):
    return None if c_dim == 0 else c


@register("stylegan3.MappingNetwork")
def _mapping(case):
    kw = case.meta["init_kwargs"]
    m = MappingNetwork(**kw)
    z, c = case.inputs["z"], _labels(case.inputs["c"], kw["c_dim"])
    template = jax.eval_shape(lambda: m.init(jax.random.PRNGKey(0), z, c))
    v = official_to_variables(case.state, template=template)
    return {"ws": np.asarray(jax.jit(lambda v, z, c: m.apply(v, z, c, **case.meta["call_kwargs"]))(v, z, c))}


def generator_outputs(case, **overrides):
    """(ws, img NCHW) of a stylegan3.Generator case; `overrides` go to the synthesis call."""
    kw = case.meta["init_kwargs"]
    g = Generator.create(**kw)
    z, c = case.inputs["z"], _labels(case.inputs["c"], kw["c_dim"])
    call = dict(case.meta["call_kwargs"])
    psi = call.pop("truncation_psi", 1)
    cutoff = call.pop("truncation_cutoff", None)
    call.update(overrides)
    template = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), z, c))
    v = official_to_variables(case.state, filters=design_filters(g.design()), template=template)
    ws = jax.jit(lambda v, z, c: g.apply(v, z, c, psi, cutoff, method="map"))(v, z, c)
    img = jax.jit(lambda v, ws: g.apply(v, ws, method="synthesize", **call))(v, ws)
    return np.asarray(ws), nhwc_to_nchw(np.asarray(img))


@register("stylegan3.Generator")
def _generator(case):
    ws, img = generator_outputs(case)
    return {"ws": ws, "img": img}
