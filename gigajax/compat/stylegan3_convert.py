"""Official StyleGAN3 state_dicts (NVlabs `networks_stylegan3.py`) <-> gigajax variables.

Names match one for one (`synthesis.L3_36_64.affine.weight` is
`params['synthesis']['L3_36_64']['affine']['weight']`). Values change layout only:

| official | gigajax |
|---|---|
| conv `weight` `[O, I, k, k]` | `[k, k, I, O]` |
| dense `weight` `[out, in]` (mapping, affines, `synthesis.input.weight`) | `[in, out]` |
| `w_avg`, `magnitude_ema`, `input.freqs`, `input.phases`, `input.transform` | 'buffers', unchanged |
| `up_filter`, `down_filter` | not stored: designed from the layer schedule |

The filter buffers are checked on the way in against the filters our model designs for the
same arguments (a mismatch means the checkpoint was made with other schedule arguments, and
would load silently but compute something else) and re-emitted on the way out, so official ->
ours -> official is the identity.
"""

from __future__ import annotations

import numpy as np

from gigajax.compat.layout import hwio_to_oihw, oihw_to_hwio
from gigajax.compat.stylegan2_convert import _check_template, _flat, _nest, _plain, _set

BUFFER_NAMES = ("w_avg", "magnitude_ema", "freqs", "phases", "transform")
FILTER_NAMES = ("up_filter", "down_filter")


def design_filters(design):
    """`{layer_name: {'up_filter': f or None, 'down_filter': f or None}}` of a SynthesisDesign."""
    return {d.name: {"up_filter": d.up_filter, "down_filter": d.down_filter} for d in design.layers}


def _check_filter(key, value, want):
    if want is None:
        raise ValueError(f"state[{key!r}] exists but the model's layer uses the identity filter there; "
                         "the checkpoint was made with other synthesis arguments")
    if value.shape != want.shape or not np.allclose(value, want, rtol=1e-5, atol=1e-7):
        raise ValueError(f"state[{key!r}] (shape {value.shape}) differs from the filter designed for this model "
                         f"(shape {want.shape}); the checkpoint was made with other synthesis arguments "
                         "(filter_size, first_cutoff, stopbands, use_radial_filters, ...)")


def official_to_variables(state, filters=None, template=None, prefix="synthesis"):
    """Official state_dict (dotted names -> arrays) -> `{'params': ..., 'buffers': ...}`.

    Args:
      state: a Generator's, SynthesisNetwork's or MappingNetwork's state_dict as numpy arrays.
      filters: `design_filters(design)` of our model; when given, every `up_filter`/`down_filter`
        in `state` is checked against it, and filters the model designs but `state` lacks are errors.
      template: optional variables tree of our model (e.g. from `jax.eval_shape(model.init, ...)`);
        every leaf must be present with its shape.
      prefix: the name of the synthesis module in `state` ('' for a bare SynthesisNetwork).
    """
    tree = _nest({k: np.asarray(v) for k, v in state.items()})
    out = {"params": {}, "buffers": {}}
    seen = set()
    for key, value in state.items():
        path = tuple(key.split("."))
        leaf = path[-1]
        value = np.asarray(value)
        if leaf in FILTER_NAMES:
            layer = path[-2]
            seen.add((layer, leaf))
            if filters is not None:
                if layer not in filters:
                    raise ValueError(f"state[{key!r}]: no layer {layer!r} in the model")
                _check_filter(key, value.astype(np.float32), filters[layer][leaf])
            continue
        value = value.astype(np.float32)
        if leaf == "weight" and value.ndim == 4:
            value = oihw_to_hwio(value)
        elif leaf == "weight" and value.ndim == 2:
            value = value.T
        collection = "buffers" if leaf in BUFFER_NAMES else "params"
        _set(out[collection], path, np.array(value, dtype=np.float32, order="C"))
    if filters is not None:
        base = tree.get(prefix, {}) if prefix else tree
        for layer, fs in filters.items():
            if layer not in base:
                continue
            for leaf, f in fs.items():
                if f is not None and (layer, leaf) not in seen:
                    raise ValueError(f"state lacks {'.'.join(filter(None, (prefix, layer, leaf)))!r}")
    if not out["buffers"]:
        del out["buffers"]
    if template is not None:
        _check_template(out, template)
    return out


def variables_to_official(variables, filters=None, prefix="synthesis"):
    """Inverse of `official_to_variables`: variables -> flat official state_dict (numpy), with the
    `up_filter`/`down_filter` buffers of `filters` (`design_filters(design)`) re-emitted."""
    state = {}
    for collection in ("params", "buffers"):
        for path, value in _flat(_plain(variables.get(collection, {}))):
            value = np.asarray(value)
            if path[-1] == "weight" and value.ndim == 4:
                value = hwio_to_oihw(value)
            elif path[-1] == "weight" and value.ndim == 2:
                value = value.T
            state[".".join(path)] = np.array(value, dtype=np.float32, order="C")
    for layer, fs in (filters or {}).items():
        for leaf, f in fs.items():
            if f is not None:
                state[".".join(filter(None, (prefix, layer, leaf)))] = np.array(f, np.float32)
    return state
