"""StyleGAN-XL generators: `Generator` (a StyleGAN3 synthesis network behind StyleGAN-XL's mapping)
and `SuperresGenerator` (a trained stem grown by a superresolution head), NHWC.

Also what a progressive-growing trainer needs around them: `init_variables` (with the pretrained
class embeddings), `superres_variables` (a stage's variables from its stem's plus fresh heads) and
`trainable_mask` (what the official superres stage trains).
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gigajax.models.stylegan3 import Generator as _StyleGAN3Generator
from gigajax.models.stylegan3 import SynthesisInput, SynthesisLayer, SynthesisNetwork
from gigajax.models.stylegan3.design import SynthesisDesign
from gigajax.models.stylegan_xl.design import SuperresPlan, superres_plan
from gigajax.models.stylegan_xl.mapping import NUM_EMBEDDINGS, MappingNetwork, check_labels
from gigajax.ops._args import fail

_PLANS = {}  # (stem kwargs, stages) -> SuperresPlan
_MAPPING_ARGS = ("num_layers", "lr_multiplier", "w_avg_beta", "rand_embedding", "num_embeddings", "embedding_dim")
_BASE_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")


def _check_mapping_kwargs(mapping_kwargs):
    unknown = sorted(set(mapping_kwargs or {}) - set(_MAPPING_ARGS))
    if unknown:
        fail("mapping_kwargs", unknown, f"names among {sorted(_MAPPING_ARGS)}")


class Generator(_StyleGAN3Generator):
    """z `[N, z_dim]`, c `[N, c_dim]` -> img `[N, img_resolution, img_resolution, img_channels]`.

    Official `networks_stylegan3_resetting.Generator`: StyleGAN3's synthesis network (the same
    `gigajax.models.stylegan3.SynthesisNetwork`, config T or R) behind StyleGAN-XL's
    `MappingNetwork` (class embedding table, per-class w_avg). `Generator.create(z_dim, c_dim,
    w_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs)` takes the official
    constructor arguments flat. Entry points (through `apply`), as StyleGAN3's: `__call__(z, c,
    truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs)`;
    `method='map'` -> ws `[N, num_ws, w_dim]`; `method='synthesize'`: `(ws, **synthesis_kwargs)`.
    Variables: 'params' and 'buffers' (mapping.w_avg, synthesis.input.{freqs, phases, transform},
    synthesis.L*.magnitude_ema).
    """

    @classmethod
    def create(cls, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=None, name=None,
               **synthesis_kwargs):
        _check_mapping_kwargs(mapping_kwargs)
        check_labels(c_dim, dict(mapping_kwargs or {}).get("num_embeddings", NUM_EMBEDDINGS))
        return super().create(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=mapping_kwargs,
                              name=name, **synthesis_kwargs)

    def setup(self):
        self.synthesis = SynthesisNetwork.create(self.w_dim, self.img_resolution, self.img_channels,
                                                 **self.synthesis_kwargs)
        self.mapping = MappingNetwork(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
                                      **self.mapping_kwargs)

    @property
    def kwargs(self):
        """The official constructor arguments, flat (what `create` takes)."""
        return dict(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, img_resolution=self.img_resolution,
                    img_channels=self.img_channels, mapping_kwargs=dict(self.mapping_kwargs), **self.synthesis_kwargs)

    @property
    def head_layer_names(self):
        return ()


class SuperresSynthesis(nn.Module):
    """ws `[N, num_ws, w_dim]` -> img `[N, R, R, img_channels]` (float32) for a given `design`.

    StyleGAN3's SynthesisNetwork, except that the layers come from an explicit SynthesisDesign
    with per-layer settings `layer_kwargs` (stem and head layers differ in conv_clamp and
    magnitude_ema_beta). Same submodule names (`input`, `L{idx}_{size}_{channels}`), same call
    `(ws, transform=None, noise_mode='random', force_fp32=False, update_emas=False)`.
    """
    w_dim: int
    design: SynthesisDesign
    layer_kwargs: tuple
    output_scale: float = 0.25
    compute_dtype: Any = None
    filtered_lrelu_impl: str = "auto"

    @nn.compact
    def __call__(self, ws, transform=None, noise_mode="random", force_fp32=False, update_emas=False):
        d = self.design
        if ws.ndim != 3 or ws.shape[1:] != (d.num_ws, self.w_dim):
            fail("ws.shape", tuple(ws.shape), f"[N, num_ws={d.num_ws}, w_dim={self.w_dim}]")
        ws = ws.astype(jnp.float32)
        x = SynthesisInput(self.w_dim, d.input_channels, d.input_size, d.input_sampling_rate, d.input_bandwidth,
                           name="input")(ws[:, 0], transform=transform)
        for idx, (layer, kw) in enumerate(zip(d.layers, self.layer_kwargs)):
            x = SynthesisLayer(self.w_dim, layer, compute_dtype=self.compute_dtype,
                               filtered_lrelu_impl=self.filtered_lrelu_impl, name=layer.name, **kw)(
                x, ws[:, idx + 1], noise_mode=noise_mode, force_fp32=force_fp32, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.astype(jnp.float32)


class SuperresGenerator(nn.Module):
    """A stem Generator grown to `img_resolution = stem resolution * prod(up_factors)`.

    Official `networks_stylegan3_resetting.SuperresGenerator(img_resolution, path_stem, head_layers,
    up_factor)`, which loads the stem from a pickle. Here the stem is its configuration:
    `stem_kwargs`, the base `Generator.create` kwargs, and `stages`, `((head_layers, up_factor),
    ...)`, one per superres stage built on the previous one (progressive growing 16 -> 32 -> 64 is
    two stages). Build one with `SuperresGenerator.create(img_resolution, stem, head_layers,
    up_factor)`, `stem` being a Generator, a SuperresGenerator or a dict of Generator kwargs.

    The mapping network is the stem's, with num_ws grown to the new layer count. The synthesis
    network keeps the stem's input layer and layers up to its last non-critically-sampled one, then
    appends `head_layers + 1` layers (see `gigajax.models.stylegan_xl.design`). Variable names are
    the official state_dict's. Entry points as Generator's: `__call__`, `method='map'`,
    `method='synthesize'`.
    """
    stem_kwargs: Mapping[str, Any]
    stages: tuple

    @classmethod
    def create(cls, img_resolution, stem, head_layers, up_factor, c_dim=None, img_channels=None, name=None):
        """The official constructor: `img_resolution` must equal the stem's times `up_factor`.
        `c_dim` / `img_channels` (the dataset's, which the official training loop passes and the
        official class ignores in favour of the stem's) must match the stem's when given."""
        if isinstance(stem, SuperresGenerator):
            stem_kwargs, stages = dict(stem.stem_kwargs), tuple(stem.stages)
        elif isinstance(stem, Generator):
            stem_kwargs, stages = stem.kwargs, ()
        elif isinstance(stem, Mapping):
            stem_kwargs, stages = dict(stem), ()
        else:
            fail("stem", type(stem).__name__, "a stylegan_xl Generator, SuperresGenerator or dict of Generator kwargs")
        Generator.create(**stem_kwargs)  # validates the stem's arguments
        model = cls(stem_kwargs, stages + ((head_layers, up_factor),), name=name)
        plan = model.plan()
        if img_resolution != plan.img_resolution:
            fail("img_resolution", img_resolution, f"the stem's {plan.img_resolution // up_factor} * "
                 f"up_factor={up_factor} = {plan.img_resolution}")
        for arg, value in (("c_dim", c_dim), ("img_channels", img_channels)):
            if value is not None and value != stem_kwargs[arg]:
                fail(arg, value, f"the stem's {arg}={stem_kwargs[arg]}")
        return model

    def plan(self) -> SuperresPlan:
        """The static schedule: design, per-layer settings, head layer names."""
        if not self.stages:
            fail("stages", self.stages, "at least one (head_layers, up_factor)")
        # Designing every filter again for each property access would add up at trace time.
        key = (repr(sorted(self.stem_kwargs.items())), tuple(map(tuple, self.stages)))
        if key not in _PLANS:
            _PLANS[key] = superres_plan(self.stem_kwargs, self.stages)
        return _PLANS[key]

    def design(self) -> SynthesisDesign:
        return self.plan().design

    # The official attributes z_dim, c_dim, w_dim, img_channels are the stem's.
    @property
    def z_dim(self):
        return self.stem_kwargs["z_dim"]

    @property
    def c_dim(self):
        return self.stem_kwargs["c_dim"]

    @property
    def w_dim(self):
        return self.stem_kwargs["w_dim"]

    @property
    def img_channels(self):
        return self.stem_kwargs["img_channels"]

    @property
    def img_resolution(self):
        return self.plan().img_resolution

    @property
    def num_ws(self):
        return self.plan().num_ws

    @property
    def head_layer_names(self):
        return self.plan().head_layer_names

    @property
    def head_layers(self):
        return self.stages[-1][0]

    @property
    def up_factor(self):
        return self.stages[-1][1]

    def setup(self):
        kw = self.stem_kwargs
        plan = self.plan()
        synthesis = {k: v for k, v in kw.items() if k not in _BASE_ARGS}
        self.synthesis = SuperresSynthesis(
            kw["w_dim"], plan.design, plan.layer_kwargs, output_scale=synthesis.get("output_scale", 0.25),
            compute_dtype=synthesis.get("compute_dtype"),
            filtered_lrelu_impl=synthesis.get("filtered_lrelu_impl", "auto"))
        self.mapping = MappingNetwork(z_dim=kw["z_dim"], c_dim=kw["c_dim"], w_dim=kw["w_dim"], num_ws=plan.num_ws,
                                      **dict(kw.get("mapping_kwargs") or {}))

    def map(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        return self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                            update_emas=update_emas)

    def synthesize(self, ws, **synthesis_kwargs):
        return self.synthesis(ws, **synthesis_kwargs)

    def __call__(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.map(z, c, truncation_psi, truncation_cutoff, update_emas)
        return self.synthesize(ws, update_emas=update_emas, **synthesis_kwargs)


# --- variables for training ----------------------------------------------------------------------

def _init(model, key):
    """`model.init` on a dummy batch, jitted: the forward pass it traces is dead code for the
    variables (no EMA moves at init), so XLA drops it, where eager init would run every op."""
    z = jnp.zeros((1, model.z_dim), jnp.float32)
    c = jnp.zeros((1, model.c_dim), jnp.float32) if model.c_dim else None
    return jax.jit(model.init)(key, z, c)


def init_variables(model, key, class_embeddings=None):
    """Fresh variables of a Generator / SuperresGenerator, as the official constructor makes them.

    `class_embeddings`: the `[1000, 320]` table (or the path of the official
    `in_embeddings/tf_efficientnet_lite0.pkl`) that replaces the random `mapping.embed.weight`.
    Required when the model's `rand_embedding` is False (the official default), where a random
    table would silently differ from the official model; not allowed when it is True.
    """
    kwargs = model.stem_kwargs if isinstance(model, SuperresGenerator) else model.kwargs
    rand = bool(dict(kwargs.get("mapping_kwargs") or {}).get("rand_embedding", False))
    if class_embeddings is None and not rand:
        fail("class_embeddings", None, "the pretrained [1000, 320] table or the path of the official "
             "in_embeddings/tf_efficientnet_lite0.pkl (autonomousvision/stylegan-xl), because "
             "mapping_kwargs['rand_embedding'] is False; or set rand_embedding=True for a random table")
    if class_embeddings is not None and rand:
        fail("class_embeddings", "a table", "None, because mapping_kwargs['rand_embedding'] is True")
    variables = _init(model, key)
    return variables if class_embeddings is None else with_class_embeddings(variables, class_embeddings)


def with_class_embeddings(variables, class_embeddings):
    """`variables` with `mapping.embed.weight` replaced by `class_embeddings`: a table of the same
    shape, or the path of the official `in_embeddings/tf_efficientnet_lite0.pkl`."""
    if isinstance(class_embeddings, (str, bytes)) or hasattr(class_embeddings, "__fspath__"):
        from gigajax.compat.stylegan_xl_convert import load_class_embeddings  # reads a file: compat's job
        class_embeddings = load_class_embeddings(class_embeddings)
    table = np.asarray(class_embeddings, np.float32)
    want = tuple(np.shape(variables["params"]["mapping"]["embed"]["weight"]))
    if table.shape != want:
        fail("class_embeddings.shape", table.shape, f"{want} (num_embeddings, embedding_dim)")
    return _replace(variables, ("params", "mapping", "embed", "weight"), jnp.asarray(table))


def _replace(tree, path, value):
    if not path:
        return value
    out = dict(tree)
    out[path[0]] = _replace(tree[path[0]], path[1:], value)
    return out


def _flat(tree, prefix=()):
    for k, v in tree.items():
        if isinstance(v, Mapping):
            yield from _flat(v, prefix + (k,))
        else:
            yield prefix + (k,), v


def _nest(flat):
    out = {}
    for path, v in flat.items():
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = v
    return out


def superres_variables(model: SuperresGenerator, stem_variables, key):
    """Variables of a superres stage: every stem variable it keeps (the whole mapping network with
    w_avg and the class table, the synthesis input layer, the kept stem layers with their
    magnitude_ema) copied from `stem_variables` (official: the stem pickle's G_ema), the head layers
    freshly initialised from `key` as the official constructor does (affine bias 1, weights N(0, 1),
    bias 0, magnitude_ema 1). The stem's dropped layers are ignored; anything the stage keeps must
    be in `stem_variables` with the same shape.
    """
    if not isinstance(model, SuperresGenerator):
        fail("model", type(model).__name__, "a SuperresGenerator")
    z = jnp.zeros((1, model.z_dim), jnp.float32)
    c = jnp.zeros((1, model.c_dim), jnp.float32) if model.c_dim else None
    template = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), z, c))
    heads = _init_heads(model, key)
    stem = {(coll,) + p: v for coll in stem_variables for p, v in _flat(stem_variables[coll])}
    out, problems = {}, []
    for coll in template:
        for path, want in _flat(template[coll]):
            full = (coll,) + path
            if len(path) > 1 and path[0] == "synthesis" and path[1] in heads:
                out[full] = heads[path[1]][coll]
                for p in path[2:]:
                    out[full] = out[full][p]
            elif full not in stem:
                problems.append(f"missing {'/'.join(full)}")
            elif np.shape(stem[full]) != want.shape:
                problems.append(f"{'/'.join(full)} {np.shape(stem[full])} != {want.shape}")
            else:
                out[full] = jnp.asarray(stem[full])
    if problems:
        raise ValueError("stem_variables do not fit the stem of this SuperresGenerator: " + "; ".join(problems))
    tree = _nest(out)
    return {coll: tree[coll] for coll in template}


def _init_heads(model, key):
    """`{head name: variables}`, each head layer initialised on its own (one jit for all of them):
    initialising the whole model would also draw the stem's variables, only to throw them away,
    and compile a random draw per parameter of the whole network."""
    plan = model.plan()
    synthesis = {k: v for k, v in model.stem_kwargs.items() if k not in _BASE_ARGS}
    layers = {d.name: (d, kw) for d, kw in zip(plan.design.layers, plan.layer_kwargs)
              if d.name in plan.head_layer_names}

    def init_all(key):
        out = {}
        for i, (name, (d, kw)) in enumerate(layers.items()):
            layer = SynthesisLayer(model.w_dim, d, compute_dtype=synthesis.get("compute_dtype"),
                                   filtered_lrelu_impl=synthesis.get("filtered_lrelu_impl", "auto"), **kw)
            x = jnp.zeros((1, d.in_size[1], d.in_size[0], d.in_channels), jnp.float32)
            out[name] = layer.init(jax.random.fold_in(key, i), x, jnp.zeros((1, model.w_dim), jnp.float32))
        return out

    return jax.jit(init_all)(key)


def trainable_mask(model, params):
    """A pytree of bools like `params`: what the official superres stage trains.

    Official `ProjectedGANLoss(train_head_only=True)`: the mapping network (class table,
    embed_proj, fc*) is frozen, and of the synthesis layers only the newest stage's heads train.
    The synthesis `input` layer (Fourier features' affine and mixing weight) is not among the
    official `layer_names`, so it is NOT frozen: it keeps training. For a plain Generator
    everything trains. Use with e.g. `optax.multi_transform({True: adam, False:
    optax.set_to_zero()}, mask)` (frozen parameters must get no update at all, as official Adam
    skips parameters without gradients; buffers are not parameters and are not covered here).
    """
    heads = set(model.head_layer_names)
    if not heads:
        return jax.tree.map(lambda _: True, params)

    def label(path, _):
        names = [getattr(k, "key", getattr(k, "name", None)) for k in path]
        if names[0] == "mapping":
            return False
        if names[0] == "synthesis":
            return names[1] == "input" or names[1] in heads
        fail("params", "/".join(map(str, names)), "paths under 'mapping' or 'synthesis'")

    return jax.tree_util.tree_map_with_path(label, params)
