"""Golden-case runners for the `stylegan_xl.*` kinds (autonomousvision/stylegan-xl
`training/networks_stylegan3_resetting.py`: Generator, SuperresGenerator)."""

from __future__ import annotations

import json

import jax
import numpy as np

from gigajax.compat.kinds import register
from gigajax.compat.layout import nhwc_to_nchw
from gigajax.compat.stylegan3_convert import design_filters
from gigajax.compat.stylegan_xl_convert import official_to_variables
from gigajax.models.stylegan_xl import Generator, SuperresGenerator


def build(case):
    """The gigajax model of a stylegan_xl case (a SuperresGenerator's stem from meta.stem_init_kwargs)."""
    kw = case.meta["init_kwargs"]
    if case.kind == "stylegan_xl.SuperresGenerator":
        return SuperresGenerator.create(kw["img_resolution"], dict(case.meta["stem_init_kwargs"]), kw["head_layers"],
                                        kw["up_factor"])
    return Generator.create(**kw)


def model_and_variables(case):
    g = build(case)
    z = case.inputs["z"]
    c = case.inputs["c"] if g.c_dim else None
    template = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), z, c))
    return g, official_to_variables(case.state, filters=design_filters(g.design()), template=template)


_COMPILED = {}  # (kind, kwargs, call) -> (model, map, synthesize): one compilation per configuration


def _compiled(case, call):
    key = (case.kind, json.dumps([case.meta["init_kwargs"], case.meta.get("stem_init_kwargs")], sort_keys=True),
           json.dumps(call, sort_keys=True, default=repr))
    if key not in _COMPILED:
        g = build(case)
        call = dict(call)
        psi = call.pop("truncation_psi", 1)
        cutoff = call.pop("truncation_cutoff", None)
        _COMPILED[key] = (g, jax.jit(lambda v, z, c: g.apply(v, z, c, psi, cutoff, method="map")),
                          jax.jit(lambda v, ws: g.apply(v, ws, method="synthesize", **call)))
    return _COMPILED[key]


def generator_outputs(case, variables=None, **overrides):
    """(ws, img NCHW) of a stylegan_xl case: ws = map(z, c, psi, cutoff); img = synthesize(ws, ...).
    `variables` replaces the case's converted state (e.g. the same weights read from a pickle);
    `overrides` go to the synthesis call."""
    g, map_fn, synth_fn = _compiled(case, dict(case.meta["call_kwargs"], **overrides))
    if variables is None:
        variables = model_and_variables(case)[1]
    z = case.inputs["z"]
    c = case.inputs["c"] if g.c_dim else None
    ws = map_fn(variables, z, c)
    img = synth_fn(variables, ws)
    return np.asarray(ws), nhwc_to_nchw(np.asarray(img))


@register("stylegan_xl.Generator")
def _generator(case):
    ws, img = generator_outputs(case)
    return {"ws": ws, "img": img}


@register("stylegan_xl.SuperresGenerator")
def _superres(case):
    ws, img = generator_outputs(case)
    return {"ws": ws, "img": img}
