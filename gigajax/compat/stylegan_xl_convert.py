"""Official StyleGAN-XL state_dicts (autonomousvision/stylegan-xl `networks_stylegan3_resetting.py`:
Generator, SuperresGenerator) <-> gigajax variables, and official StyleGAN-XL pickles -> gigajax.

Everything is StyleGAN3's mapping (`gigajax.compat.stylegan3_convert`: dense weights transposed,
conv weights OIHW <-> HWIO, up/down filters checked against our design and re-emitted), plus:

| official | gigajax |
|---|---|
| `mapping.embed.weight` `[1000, 320]` (an nn.Embedding table) | `params/mapping/embed/weight`, unchanged |
| `mapping.embed_proj.weight` `[z_dim, 320]` | `[320, z_dim]` |
| `mapping.w_avg` `[c_dim, w_dim]` | 'buffers', unchanged |

A SuperresGenerator's state_dict has the same form; its layer names (kept stem layers, then
heads) come from `SuperresGenerator.plan()`, and its filters are checked like any other.
"""

from __future__ import annotations

import re

import numpy as np

from gigajax.compat import stylegan3_convert
from gigajax.compat.stylegan2_convert import _check_template
from gigajax.compat.stylegan3_convert import design_filters

EMBED_KEY = "mapping.embed.weight"
_LAYER = re.compile(r"^synthesis\.(L\d+_\d+_\d+)\.")


def official_to_variables(state, filters=None, template=None):
    """Official state_dict (dotted names -> arrays) -> `{'params': ..., 'buffers': ...}`.

    `filters` (`design_filters(model.design())`) checks every up/down filter; `template` (e.g.
    `jax.eval_shape(model.init, ...)`) checks that every variable is there with its shape.
    """
    state = dict(state)
    table = state.pop(EMBED_KEY, None)
    out = stylegan3_convert.official_to_variables(state, filters=filters)
    if table is not None:
        mapping = out["params"].setdefault("mapping", {})
        mapping["embed"] = {"weight": np.array(table, dtype=np.float32, order="C")}
    if template is not None:
        _check_template(out, template)
    return out


def variables_to_official(variables, filters=None):
    """Inverse of `official_to_variables`, with the filters of `filters` re-emitted (bitwise
    round trip: official -> ours -> official is the identity)."""
    params = dict(variables.get("params", {}))
    mapping = dict(params.get("mapping", {}))
    embed = mapping.pop("embed", None)
    if embed is not None:
        params["mapping"] = mapping
    state = stylegan3_convert.variables_to_official(dict(variables, params=params), filters=filters)
    if embed is not None:
        state[EMBED_KEY] = np.array(embed["weight"], dtype=np.float32, order="C")
    return state


# --- the official class-embedding table -----------------------------------------------------------

def load_class_embeddings(path) -> np.ndarray:
    """`in_embeddings/tf_efficientnet_lite0.pkl` of autonomousvision/stylegan-xl -> the `[1000, 320]`
    float32 table. The file is a dill pickle of `{'embed': torch.nn.Embedding}`; it is read with
    gigajax's restricted unpickler (no torch, nothing from the file executed)."""
    from gigajax.compat.stylegan2_pkl import NetworkPickleError, _network, _NetworkUnpickler

    try:
        with open(path, "rb") as f:
            data = _NetworkUnpickler(f).load()
    except OSError as e:
        raise FileNotFoundError(f"class embeddings {str(path)!r}: {e}; the file is in_embeddings/"
                                f"tf_efficientnet_lite0.pkl of github.com/autonomousvision/stylegan-xl") from None
    except NetworkPickleError as e:
        raise NetworkPickleError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a foreign or damaged file
        raise NetworkPickleError(f"{path}: not a readable embedding pickle ({type(e).__name__}: {e})") from None
    embed = data.get("embed") if isinstance(data, dict) else None
    state = _network(embed, f"{path} ['embed']").state_dict if embed is not None else {}
    table = state.get("weight")
    if table is None or table.ndim != 2:
        raise NetworkPickleError(f"{path}: expected {{'embed': nn.Embedding}} with a 2-D weight, found "
                                 f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
    return np.asarray(table, np.float32)


# --- official pickles ----------------------------------------------------------------------------

def generator_kwargs(net) -> dict:
    """A pickled XL Generator's constructor arguments as `Generator.create` keywords."""
    from gigajax.compat.stylegan2_pkl import stylegan2_kwargs

    kwargs = stylegan2_kwargs(net)
    kwargs["mapping_kwargs"] = dict(kwargs.get("mapping_kwargs") or {})
    return kwargs


def stem_kwargs_of(net) -> dict:
    """The base Generator's constructor arguments of a pickled SuperresGenerator, from the
    constructor arguments its mapping and synthesis submodules recorded (they are the stem's
    modules, shared by every stage)."""
    mapping = dict(net.sub_init_kwargs.get("mapping") or {})
    synthesis = dict(net.sub_init_kwargs.get("synthesis") or {})
    if not mapping or not synthesis:
        raise ValueError(f"{net.class_name}: the pickle records no constructor arguments for 'mapping' / "
                         f"'synthesis' (expected persistent StyleGAN-XL submodules)")
    kwargs = {k: mapping.pop(k) for k in ("z_dim", "c_dim", "w_dim")}
    mapping.pop("num_ws", None)   # follows from the synthesis network
    synthesis.pop("w_dim", None)
    kwargs.update(img_resolution=synthesis.pop("img_resolution"), img_channels=synthesis.pop("img_channels"),
                  mapping_kwargs=mapping, **synthesis)
    return kwargs


def layer_names(state) -> list:
    """The synthesis layer names of a state_dict, in order of appearance."""
    names = []
    for key in state:
        m = _LAYER.match(key)
        if m and m.group(1) not in names:
            names.append(m.group(1))
    return names


def infer_stages(stem_kwargs, names, head_layers, up_factor, layer_kwargs=None):
    """The `(head_layers, up_factor)` stages of a SuperresGenerator whose synthesis layers are
    `names`, given its last stage. A pickle records only the last stage (`path_stem` names the file
    of the one before), so the earlier ones are recovered from its layers: after the base stem's
    kept layers, each earlier stage kept `head_layers - num_critical` layers, and each stage's first
    layer is the one whose input and output cutoffs are equal (it refines without raising the
    band), which `layer_kwargs` (`{name: the layer's recorded constructor kwargs}`) tells. Each
    stage's up_factor is the one whose layer names match."""
    from gigajax.models.stylegan_xl import kept_layers, superres_plan
    from gigajax.models.stylegan_xl.design import SCHEDULE_DEFAULTS, UP_FACTORS

    final = ((head_layers, up_factor),)
    keep = kept_layers(superres_plan(stem_kwargs, ()).design)
    middle = names[keep:len(names) - (head_layers + 1)]
    num_critical = stem_kwargs.get("num_critical", SCHEDULE_DEFAULTS["num_critical"])

    def stage_starts():
        starts = []
        for i, name in enumerate(middle):
            kw = (layer_kwargs or {}).get(name)
            if not kw or "in_cutoff" not in kw or "out_cutoff" not in kw:
                raise ValueError(f"layer {name} records no in_cutoff/out_cutoff, so the superres stages before the "
                                 f"last cannot be told apart")
            if kw["in_cutoff"] == kw["out_cutoff"]:
                starts.append(i)
        if not starts or starts[0] != 0:
            raise ValueError(f"layers {middle} do not start a superres stage (first layer with in_cutoff == "
                             f"out_cutoff)")
        return starts

    bounds = stage_starts() + [len(middle)] if middle else [0]

    def search(stages, j):
        """Depth-first over the up_factors that fit stage j's kept layers. A stage that keeps only its
        first layer does not show its up_factor there (that layer stays at the stem's rate), so
        later stages decide; chains that differ only so give identical networks."""
        if j == len(bounds) - 1:
            chain = stages + final
            try:
                if [d.name for d in superres_plan(stem_kwargs, chain).design.layers] == list(names):
                    return chain
            except ValueError:
                pass
            return None
        h = bounds[j + 1] - bounds[j] + num_critical
        for u in UP_FACTORS:
            try:
                plan = superres_plan(stem_kwargs, stages + ((h, u),))
            except ValueError:
                continue
            if [d.name for d in plan.design.layers][:kept_layers(plan.design)] == names[:keep + bounds[j + 1]]:
                found = search(stages + ((h, u),), j + 1)
                if found is not None:
                    return found
        return None

    found = search((), 0)
    if found is None:
        raise ValueError(f"no chain of superres stages ending in head_layers={head_layers}, up_factor={up_factor} "
                         f"gives the layers {list(names)}")
    return found


def to_stylegan_xl(net, what="network"):
    """A pickled StyleGAN-XL Generator or SuperresGenerator `Network` -> (gigajax model, variables),
    checked leaf by leaf against the model's variable shapes and filter by filter against its design."""
    import jax

    from gigajax.compat.stylegan2_pkl import NetworkPickleError
    from gigajax.models.stylegan_xl import Generator, SuperresGenerator

    try:
        if net.class_name == "Generator":
            kwargs = generator_kwargs(net)
            model = Generator.create(**kwargs)
        elif net.class_name == "SuperresGenerator":
            kw = dict(zip(("img_resolution", "path_stem", "head_layers", "up_factor"), net.init_args))
            kw.update(net.init_kwargs)
            kwargs = stem_kwargs_of(net)
            layers = {k.split(".", 1)[1]: v for k, v in net.sub_init_kwargs.items() if k.startswith("synthesis.")}
            stages = infer_stages(kwargs, layer_names(net.state_dict), kw["head_layers"], kw["up_factor"], layers)
            model = SuperresGenerator(kwargs, stages)
            if model.img_resolution != kw["img_resolution"]:
                raise ValueError(f"stages {stages} give resolution {model.img_resolution}, the pickle says "
                                 f"{kw['img_resolution']}")
        else:
            raise NotImplementedError(f"{what} is a {net.class_name} of StyleGAN-XL: gigajax loads its Generator "
                                      f"and SuperresGenerator")
        z = np.zeros([1, model.z_dim], np.float32)
        c = np.zeros([1, model.c_dim], np.float32) if model.c_dim else None
        template = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), z, c))
    except (TypeError, KeyError, ValueError) as e:
        raise NetworkPickleError(f"{what}: gigajax's StyleGAN-XL {net.class_name} does not fit the pickle's "
                                 f"arguments: {type(e).__name__}: {e}") from None
    try:
        variables = official_to_variables(net.state_dict, filters=design_filters(model.design()), template=template)
    except ValueError as e:
        raise NetworkPickleError(f"{what}: {e}") from None
    return model, variables
