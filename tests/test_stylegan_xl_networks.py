"""StyleGAN-XL generators (gigajax.models.stylegan_xl): golden parity with autonomousvision/stylegan-xl's
networks_stylegan3_resetting.py, the state_dict converter, official pickles (written here as the
official training loop writes them, with dill's spellings), a superres stage built from its stem, the
frozen-parameter mask, class-wise w_avg and truncation, and argument errors. With
GIGAJAX_STYLEGAN_XL_SRC pointing at a checkout of autonomousvision/stylegan-xl (and dill installed),
real official networks are pickled, loaded and compared too."""

import copy
import os
import pickle
import sys
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gigajax.compat import golden, stylegan_xl_kinds, verify
from gigajax.compat.stylegan2_pkl import load_network, load_network_pkl
from gigajax.compat.stylegan3_convert import design_filters
from gigajax.compat.stylegan_xl_convert import (infer_stages, load_class_embeddings, official_to_variables,
                                                variables_to_official)
from gigajax.models.stylegan_xl import (Generator, SuperresGenerator, init_variables, superres_plan,
                                        superres_variables, trainable_mask, with_class_embeddings)

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("stylegan_xl_*.npz"))
G_CASE = GOLDEN / "stylegan_xl_generator_t_cond.npz"
SR_CASE = GOLDEN / "stylegan_xl_superres_16to32_cond.npz"
# A tiny stem: 8x8, 4 layers, one critically sampled layer before ToRGB.
TINY = dict(z_dim=8, c_dim=3, w_dim=16, img_resolution=8, img_channels=1, channel_base=128, channel_max=16,
            num_layers=4, num_critical=1, margin_size=2, num_fp16_res=0, mapping_kwargs=dict(num_layers=2))
TABLE = np.random.RandomState(4).randn(1000, 320).astype(np.float32)   # stands in for the pretrained table
BUFFERS = ("w_avg", "magnitude_ema", "up_filter", "down_filter", "freqs", "phases", "transform")
MARKER = "gigajax_xl_module_src_ran"
# Stand-in for the pickled networks_stylegan3_resetting.py: class names and the embed_proj line tell
# the architecture; running it would leave MARKER behind.
XL_SRC = ("class MappingNetwork(torch.nn.Module):\n    def __init__(self):\n        self.embed_proj = None\n"
          + "".join(f"class {c}(torch.nn.Module):\n    pass\n" for c in (
              "FullyConnectedLayer", "SynthesisInput", "SynthesisLayer", "SynthesisNetwork", "Generator",
              "SuperresGenerator"))
          + f"open({MARKER!r}, 'w').close()\n")


def _rand(shape, seed, scale=1.0):
    return (scale * np.random.RandomState(seed).randn(*shape)).astype(np.float32)


# --- golden parity and the converter ------------------------------------------------------------

def test_cases_exist():
    assert {golden.load(p).kind for p in CASES} == {"stylegan_xl.Generator", "stylegan_xl.SuperresGenerator"}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_case(path):
    r = verify.run_case(path)
    assert r.status == "pass", f"{r.kind}: rel-L2 {r.worst} > {r.tolerance} {r.detail}"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_convert_round_trip_is_identity(path):
    case = golden.load(path)
    filters = design_filters(stylegan_xl_kinds.build(case).design())
    v = official_to_variables(case.state, filters=filters)
    # The class table is a lookup table: kept as torch stores it, rows = classes.
    np.testing.assert_array_equal(v["params"]["mapping"]["embed"]["weight"], case.state["mapping.embed.weight"])
    assert v["buffers"]["mapping"]["w_avg"].shape == (10, 64)
    back = variables_to_official(v, filters=filters)
    assert sorted(back) == sorted(case.state)
    for key, ref in case.state.items():
        assert back[key].shape == ref.shape and back[key].dtype == ref.dtype, key
        np.testing.assert_array_equal(back[key], ref, err_msg=key)


def test_superres_layers_match_the_official_names():
    case = golden.load(SR_CASE)
    g = stylegan_xl_kinds.build(case)
    names = [d.name for d in g.design().layers]
    # The stem's 6 layers lose L4, L5 (critically sampled) and ToRGB L6; the head is numbered from
    # len(kept) + 1 = 5, and its first layer keeps the stem's rate and width.
    assert g.plan().stem_layer_names == ("L0_36_64", "L1_36_64", "L2_36_64", "L3_36_64")
    assert g.head_layer_names == ("L5_36_64", "L6_52_54", "L7_52_32", "L8_32_32", "L9_32_3")
    assert names == [k.split(".")[1] for k in case.state if k.endswith(".affine.bias") and ".L" in k]
    assert g.num_ws == 10 and g.img_resolution == 32 and g.stages == ((4, 2),)
    # Head layers take the constructor defaults, not the stem's magnitude_ema_beta=0.8.
    assert g.plan().layer_kwargs[0]["magnitude_ema_beta"] == 0.8
    assert g.plan().layer_kwargs[-1] == {"conv_clamp": 256, "magnitude_ema_beta": 0.999}


# --- official pickles ----------------------------------------------------------------------------

@pytest.fixture
def official_names(monkeypatch, tmp_path):
    """Fake torch_utils.persistence, dnnlib.util and dill._dill, so that pickles name the official
    functions; loading must never call them. torch is imported first: it probes for dill at import."""
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)

    def named(module, fn):
        fn.__module__, fn.__qualname__ = module.__name__, fn.__name__
        setattr(module, fn.__name__, fn)
        return fn

    def never(*args):
        raise AssertionError("an official function was called while loading")

    persistence, util, dill = (types.ModuleType(n) for n in ("torch_utils.persistence", "dnnlib.util", "dill._dill"))
    names = types.SimpleNamespace(EasyDict=type("EasyDict", (dict,), {"__module__": "dnnlib.util"}))
    for module, fn in ((persistence, "_reconstruct_persistent_obj"), (dill, "_load_type"), (dill, "_get_attr"),
                       (dill, "_import_module"), (dill, "_create_array")):
        setattr(names, fn, named(module, types.FunctionType(never.__code__, {}, fn)))
    util.EasyDict = names.EasyDict
    for name, module in {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
                         "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util, "dill": types.ModuleType("dill"),
                         "dill._dill": dill}.items():
        monkeypatch.setitem(sys.modules, name, module)
    yield names
    assert not (tmp_path / MARKER).exists(), "pickled module source was executed"


class _Reduced:
    """An object that pickles as `fn(*args)` (to spell values the way dill does)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __call__(self, *args):
        raise AssertionError("only pickled")

    def __reduce__(self):
        return self.fn, self.args


def _dill_like_pickler(names):
    """pickle.Pickler that writes sets and numpy float64 scalars as dill 0.3.4 (StyleGAN-XL's pinned
    version) does, `_load_type('set')(items)` and `_get_attr(_import_module(m), 'scalar')(dtype,
    bytes)`, and numpy arrays as dill 0.3.5+ does, `_create_array(_reconstruct, args, state, None)`."""
    scalar = _Reduced(names._get_attr, _Reduced(names._import_module, "numpy.core._multiarray_umath"), "scalar")

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if type(obj) is set:
                return _Reduced(names._load_type, "set"), (sorted(obj),)
            if type(obj) is np.float64:
                return scalar, (np.dtype(np.float64), obj.tobytes())
            if type(obj) is np.ndarray:
                f, args, state = obj.__reduce__()
                return names._create_array, (f, args, state, None)
            return NotImplemented
    return Pickler


def _xl_module_tree(torch, names, state, class_name, init_kwargs, sub_kwargs):
    """Flat official state -> persistent modules as the official classes hold them: persistent
    submodules recording their constructor kwargs, the class table a stock nn.Embedding, numpy
    float64 gains and size arrays as attributes."""
    class Persistent(torch.nn.Module):
        def __init__(self, cls, kwargs):
            super().__init__()
            self.cls, self._init_args, self._init_kwargs = cls, (), kwargs
            self.weight_gain = np.float64(0.125)
            self.in_size = np.broadcast_to(np.asarray(36), [2])

        def __reduce__(self):
            meta = dict(type="class", version=6, module_src=XL_SRC, class_name=self.cls, state=self.__dict__)
            return names._reconstruct_persistent_obj, (meta,), None

    root = Persistent(class_name, init_kwargs)
    for key, value in state.items():
        *path, leaf = key.split(".")
        node = root
        for depth, p in enumerate(path):
            if p not in node._modules:
                sub = ".".join(path[:depth + 1])
                if sub == "mapping.embed":
                    node.add_module(p, torch.nn.Embedding(*value.shape))
                else:
                    node.add_module(p, Persistent("Layer", sub_kwargs.get(sub, {"w_dim": 64})))
            node = node._modules[p]
        t = torch.from_numpy(np.array(value))
        if leaf in BUFFERS:
            node.register_buffer(leaf, t)
        else:
            setattr(node, leaf, torch.nn.Parameter(t, requires_grad=False))
    root.layer_names = [k for k in root._modules.get("synthesis", root)._modules if k.startswith("L")]
    return root


def _official_kwargs(case, names):
    """(root init kwargs, persistent submodule kwargs) as the official constructors record them."""
    stem = case.meta.get("stem_init_kwargs") or case.meta["init_kwargs"]
    base = {k: v for k, v in stem.items() if k != "mapping_kwargs"}
    synthesis = {k: v for k, v in base.items() if k not in ("z_dim", "c_dim")}
    num_ws = stem["num_layers"] + 2
    mapping = dict(z_dim=stem["z_dim"], c_dim=stem["c_dim"], w_dim=stem["w_dim"], num_ws=num_ws,
                   **stem["mapping_kwargs"])
    if case.kind == "stylegan_xl.Generator":
        root = dict(case.meta["init_kwargs"], mapping_kwargs=names.EasyDict(stem["mapping_kwargs"]))
    else:  # the official training loop adds the dataset's c_dim and img_channels
        root = dict(case.meta["init_kwargs"], path_stem="/runs/00000-stem/best_model.pkl", c_dim=stem["c_dim"],
                    img_channels=stem["img_channels"])
    return root, {"mapping": mapping, "synthesis": synthesis}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_official_pickle_loads_through_load_network(path, official_names, tmp_path):
    # The golden state, pickled as the official training loop writes a snapshot (dill's spellings,
    # persistent modules, D stripped), loads into our model and reproduces the golden outputs.
    torch = pytest.importorskip("torch")
    case = golden.load(path)
    root_kw, sub_kw = _official_kwargs(case, official_names)
    g = _xl_module_tree(torch, official_names, case.state, case.kind.split(".")[1], root_kw, sub_kw)
    snapshot = dict(G=g, D=None, G_ema=g, augment_pipe=None,
                    training_set_kwargs=official_names.EasyDict(path="imagenet32.zip", use_labels=True),
                    progress=dict(cur_nimg=torch.LongTensor([12000]), best_fid=9.5))
    file = tmp_path / "best_model.pkl"
    with open(file, "wb") as f:
        _dill_like_pickler(official_names)(f, protocol=3).dump(snapshot)
    net = load_network_pkl(file)["G_ema"]
    assert net.architecture == "stylegan_xl" and net.sub_init_kwargs["synthesis"] == sub_kw["synthesis"]
    model, variables = load_network(file)
    assert model == stylegan_xl_kinds.build(case)
    ws, img = stylegan_xl_kinds.generator_outputs(case, variables=variables)
    assert golden.rel_l2(ws, case.outputs["ws"]) <= 1e-4 and golden.rel_l2(img, case.outputs["img"]) <= 1e-4
    back = variables_to_official(variables, design_filters(model.design()))
    assert sorted(back) == sorted(case.state)
    for key, ref in case.state.items():
        np.testing.assert_array_equal(back[key], ref, err_msg=key)


def test_infer_stages_of_a_chain():
    # A pickle names only its last stage; the earlier ones come from the layers (first layer of a
    # stage: in_cutoff == out_cutoff) and their names.
    stem = dict(z_dim=64, c_dim=1000, w_dim=512, img_resolution=16, img_channels=3, channel_base=65536,
                channel_max=1024, num_layers=11, mapping_kwargs={})
    stages = ((7, 2), (3, 4), (9, 2), (7, 2))
    plan = superres_plan(stem, stages)
    # Each stage's first layer repeats the size and width of the layer before it; only the base
    # stem's cut shows in the numbering (L9 is skipped), later stages number on.
    first, last_stem = plan.head_layer_names[0].split("_"), plan.stem_layer_names[-1].split("_")
    assert plan.img_resolution == 512 and first[1:] == last_stem[1:] == ["276", "353"]
    assert first[0] == f"L{len(plan.stem_layer_names) + 1}" and "L9_36_1024" not in plan.stem_layer_names
    names = [d.name for d in plan.design.layers]
    kwargs = {d.name: dict(in_cutoff=d.in_cutoff, out_cutoff=d.out_cutoff) for d in plan.design.layers}
    found = infer_stages(stem, names, 7, 2, kwargs)
    # A stage that keeps one layer does not show its up_factor: (3, 2), (9, 4) builds the same network.
    assert found in (stages, ((7, 2), (3, 2), (9, 4), (7, 2)))
    assert [d.name for d in superres_plan(stem, found).design.layers] == names
    # ... unless the last stage decides: then the search backtracks.
    stages = ((7, 2), (3, 4), (5, 2))
    plan = superres_plan(stem, stages)
    kwargs = {d.name: dict(in_cutoff=d.in_cutoff, out_cutoff=d.out_cutoff) for d in plan.design.layers}
    assert infer_stages(stem, [d.name for d in plan.design.layers], 5, 2, kwargs) == stages
    with pytest.raises(ValueError, match=r"records no in_cutoff/out_cutoff.*cannot be told apart"):
        infer_stages(stem, names, 7, 2, {})
    with pytest.raises(ValueError, match=r"no chain of superres stages ending in head_layers=7, up_factor=4"):
        infer_stages(stem, names, 7, 4, {n: dict(in_cutoff=1, out_cutoff=1) for n in names})


def test_class_embeddings_file(stem, official_names, tmp_path):
    # in_embeddings/tf_efficientnet_lite0.pkl: a dill pickle of {'embed': nn.Embedding(1000, 320)}.
    torch = pytest.importorskip("torch")
    g, v = stem
    np.testing.assert_array_equal(v["params"]["mapping"]["embed"]["weight"], TABLE)   # init_variables put it in
    embed = torch.nn.Embedding(1000, 320)
    with torch.no_grad():
        embed.weight.copy_(torch.from_numpy(_rand((1000, 320), 3)))
    file = tmp_path / "tf_efficientnet_lite0.pkl"
    with open(file, "wb") as f:
        _dill_like_pickler(official_names)(f, protocol=3).dump({"embed": embed})
    table = load_class_embeddings(file)
    np.testing.assert_array_equal(table, _rand((1000, 320), 3))
    np.testing.assert_array_equal(with_class_embeddings(v, file)["params"]["mapping"]["embed"]["weight"], table)
    with pytest.raises(ValueError, match=r"class_embeddings=None.*tf_efficientnet_lite0\.pkl.*rand_embedding=True"):
        init_variables(g, jax.random.PRNGKey(0))   # rand_embedding=False (official): a random table is an error
    with pytest.raises(ValueError, match=r"class_embeddings\.shape=\(10, 320\): expected \(1000, 320\)"):
        with_class_embeddings(v, np.zeros((10, 320)))
    with pytest.raises(FileNotFoundError, match=r"missing\.pkl.*autonomousvision/stylegan-xl"):
        load_class_embeddings(tmp_path / "missing.pkl")


# --- progressive growing -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stem():
    g = Generator.create(**TINY)
    v = init_variables(g, jax.random.PRNGKey(0), class_embeddings=TABLE)
    # Trained-looking buffers: a transfer that re-initialised them would show.
    v["buffers"]["mapping"]["w_avg"] = jnp.asarray(_rand((3, 16), 1))
    for d in g.design().layers:
        v["buffers"]["synthesis"][d.name]["magnitude_ema"] = jnp.float32(1.5)
    return g, v


def _leaves(tree):
    return {jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def test_superres_variables_keep_the_stem(stem):
    g, v = stem
    sr = SuperresGenerator.create(16, g, head_layers=3, up_factor=2)
    assert [d.name for d in g.design().layers] == ["L0_12_16", "L1_12_16", "L2_12_16", "L3_8_16", "L4_8_1"]
    assert sr.plan().stem_layer_names == ("L0_12_16", "L1_12_16", "L2_12_16")
    assert sr.head_layer_names[0].startswith("L4_") and len(sr.head_layer_names) == 4
    sv = superres_variables(sr, v, jax.random.PRNGKey(7))
    old, new = _leaves(v), _leaves(sv)
    heads = [k for k in new if any(f"'{h}'" in k for h in sr.head_layer_names)]
    assert heads and not set(heads) & set(old)
    for k in set(new) - set(heads):               # mapping (class table, w_avg), input, kept layers
        np.testing.assert_array_equal(new[k], old[k], err_msg=k)
    for h in sr.head_layer_names:                  # fresh as the official constructor makes them
        np.testing.assert_array_equal(sv["params"]["synthesis"][h]["affine"]["bias"], 1)
        np.testing.assert_array_equal(sv["params"]["synthesis"][h]["bias"], 0)
        assert float(sv["buffers"]["synthesis"][h]["magnitude_ema"]) == 1
    shape = jax.eval_shape(lambda: sr.apply(sv, jnp.zeros((2, 8)), jnp.eye(3)[:2]))
    assert shape.shape == (2, 16, 16, 1)

    # What the official superres stage trains: the heads and the input layer, nothing of the mapping
    # network or of the kept stem layers. A masked optimizer step leaves the frozen values exactly.
    mask = trainable_mask(sr, sv["params"])
    flat = _leaves(mask)
    assert all(not m for k, m in flat.items() if k.startswith("['mapping']"))
    assert all(flat[k] for k in flat if k.startswith("['synthesis']['input']"))
    assert all(flat[k] == any(f"'{h}'" in k for h in sr.head_layer_names) for k in flat if "['L" in k)
    opt = optax.multi_transform({True: optax.sgd(0.1), False: optax.set_to_zero()}, mask)
    grads = jax.tree.map(jnp.ones_like, sv["params"])
    updates, _ = opt.update(grads, opt.init(sv["params"]), sv["params"])
    stepped = _leaves(optax.apply_updates(sv["params"], updates))
    before = _leaves(sv["params"])
    for k, trains in flat.items():
        assert np.array_equal(stepped[k], before[k]) != trains, k
    assert all(_leaves(trainable_mask(g, v["params"])).values())   # a plain Generator trains everything

    # A second stage grows the first: its stem is the first stage's kept layers.
    sr2 = SuperresGenerator.create(32, sr, head_layers=3, up_factor=2)
    assert sr2.stages == ((3, 2), (3, 2)) and sr2.img_resolution == 32
    assert set(sr2.plan().stem_layer_names) < set(d.name for d in sr.design().layers)
    shapes = jax.eval_shape(lambda: superres_variables(sr2, sv, jax.random.PRNGKey(8)))  # (shapes: no compile)
    assert set(shapes["params"]["synthesis"]) == {"input", *(d.name for d in sr2.design().layers)}
    with pytest.raises(ValueError, match=r"stem_variables do not fit.*missing params/synthesis/L"):
        jax.eval_shape(lambda: superres_variables(sr2, v, jax.random.PRNGKey(8)))


# --- mapping: class-wise w_avg and truncation ----------------------------------------------------

def test_truncation_and_w_avg_per_class(stem):
    g, v = stem
    z = _rand((4, 8), 2)
    labels = np.array([2, 0, 2, 1])
    c = np.eye(3, dtype=np.float32)[labels] * 0.5            # only argmax(c) matters
    w_avg = np.asarray(v["buffers"]["mapping"]["w_avg"])
    run = jax.jit(lambda v, z, c, psi: g.apply(v, z, c, psi, 3, method="map"))
    free = np.asarray(run(v, z, c, 1.0))
    assert free.shape == (4, g.num_ws, 16)
    np.testing.assert_allclose(run(v, z, c, 0.0)[:, :3], np.broadcast_to(w_avg[labels][:, None], (4, 3, 16)))
    half = np.asarray(run(v, z, c, 0.5))
    np.testing.assert_allclose(half[:, :3], w_avg[labels][:, None] + 0.5 * (free[:, :3] - w_avg[labels][:, None]),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(half[:, 3:], free[:, 3:])   # beyond truncation_cutoff: untouched

    # update_emas: one sample at a time, in batch order (class 2 moves twice), others untouched.
    _, upd = g.apply(v, z, c, update_emas=True, mutable=["buffers"], method="map")
    want, beta = w_avg.copy(), np.float32(0.998)
    for i, label in enumerate(labels):                         # lerp(w_i, w_avg, beta), torch's formula
        want[label] = want[label] - (want[label] - free[i, 0]) * (np.float32(1) - beta)
    np.testing.assert_allclose(upd["buffers"]["mapping"]["w_avg"], want, rtol=1e-6, atol=1e-7)

    # Without labels: one w_avg [w_dim], the batch mean.
    g0 = Generator.create(**dict(TINY, c_dim=0))
    v0 = jax.eval_shape(lambda: g0.init(jax.random.PRNGKey(1), z, None))
    assert v0["buffers"]["mapping"]["w_avg"].shape == (16,) and "embed_proj" not in v0["params"]["mapping"]
    assert v0["params"]["mapping"]["embed"]["weight"].shape == (1000, 320)   # official state_dicts have it
    assert v0["params"]["mapping"]["fc0"]["weight"].shape == (8, 16)         # z only: z_dim inputs


# --- errors --------------------------------------------------------------------------------------

def test_argument_errors_name_the_argument(stem):
    g, v = stem
    z, c = jnp.zeros((2, 8)), jnp.eye(3)[:2]
    with pytest.raises(ValueError, match=r"c\.shape=\(2, 4\): expected \[N, c_dim=3\]"):
        g.apply(v, z, jnp.zeros((2, 4)), method="map")
    with pytest.raises(ValueError, match=r"c\.shape=None: expected \[N, c_dim=3\]"):
        g.apply(v, z, None, method="map")
    with pytest.raises(ValueError, match=r"c\.shape=\(3, 3\): expected \[N=2 \(as z\), c_dim=3\]"):
        g.apply(v, z, jnp.eye(3), method="map")
    with pytest.raises(ValueError, match=r"z\.shape=\(2, 7\): expected \[N, z_dim=8\]"):
        g.apply(v, jnp.zeros((2, 7)), c, method="map")
    with pytest.raises(ValueError, match=r"c_dim=1001: expected an integer in \[0, 1000\].*embedding table"):
        Generator.create(**dict(TINY, c_dim=1001))
    with pytest.raises(ValueError, match=r"mapping_kwargs=\['embed_features'\]"):
        Generator.create(**dict(TINY, mapping_kwargs=dict(embed_features=16)))
    with pytest.raises(ValueError, match=r"up_factor=3: expected one of \(2, 4, 8, 16\)"):
        SuperresGenerator.create(24, g, 3, 3)
    with pytest.raises(ValueError, match=r"head_layers=2: expected an integer >= 3"):
        SuperresGenerator.create(16, g, 2, 2)
    with pytest.raises(ValueError, match=r"img_resolution=32: expected the stem's 8 \* up_factor=2 = 16"):
        SuperresGenerator.create(32, g, 3, 2)
    with pytest.raises(ValueError, match=r"c_dim=10: expected the stem's c_dim=3"):
        SuperresGenerator.create(16, g, 3, 2, c_dim=10)
    with pytest.raises(ValueError, match=r"stem='str': expected a stylegan_xl Generator"):
        SuperresGenerator.create(16, "G_ema", 3, 2)
    sr = SuperresGenerator.create(16, g, 3, 2)
    with pytest.raises(ValueError, match=r"ws\.shape=\(2, 6, 16\): expected \[N, num_ws=8, w_dim=16\]"):
        jax.eval_shape(lambda: sr.apply(superres_variables(sr, v, jax.random.PRNGKey(0)), jnp.zeros((2, 6, 16)),
                                        method="synthesize"))
    with pytest.raises(ValueError, match=r"model='Generator': expected a SuperresGenerator"):
        superres_variables(g, v, jax.random.PRNGKey(0))
    rand = Generator.create(**dict(TINY, mapping_kwargs=dict(rand_embedding=True)))
    with pytest.raises(ValueError, match=r"class_embeddings='a table': expected None.*rand_embedding'\] is True"):
        init_variables(rand, jax.random.PRNGKey(0), class_embeddings=np.zeros((1000, 320)))


# --- optional: the real official networks ---------------------------------------------------------

@pytest.fixture
def official_xl(monkeypatch, tmp_path):
    """autonomousvision/stylegan-xl from GIGAJAX_STYLEGAN_XL_SRC (its MappingNetwork reads
    in_embeddings/ relative to the working directory); its modules are dropped afterwards."""
    src = os.environ.get("GIGAJAX_STYLEGAN_XL_SRC")
    if not src:
        pytest.skip("GIGAJAX_STYLEGAN_XL_SRC is not set (a checkout of autonomousvision/stylegan-xl)")
    torch = pytest.importorskip("torch")
    dill = pytest.importorskip("dill")
    before = set(sys.modules)
    monkeypatch.syspath_prepend(src)
    monkeypatch.chdir(src)
    from training import networks_stylegan3_resetting as official
    yield torch, dill, official
    root = os.path.abspath(src)
    for name in set(sys.modules) - before:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(root):
            del sys.modules[name]


def test_official_networks_match(official_xl, tmp_path):
    # A stem, a 16 -> 32 stage on it and a 32 -> 128 stage on that, each dill-pickled and reloaded by
    # the official SuperresGenerator; every one loads through load_network and matches the official
    # forward; the class-wise w_avg update is bitwise the official one.
    torch, dill, official = official_xl
    torch.manual_seed(0)
    kw = dict(z_dim=8, c_dim=5, w_dim=16, img_resolution=16, img_channels=3,
              mapping_kwargs=dict(num_layers=2, rand_embedding=False), channel_base=512, channel_max=32, num_layers=6,
              conv_kernel=3, use_radial_filters=False, magnitude_ema_beta=0.8, num_fp16_res=0, conv_clamp=None)

    def trained(net, seed):
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, t in list(net.named_parameters()) + list(net.named_buffers()):
                if name.endswith("magnitude_ema"):
                    t.copy_(torch.rand([], generator=gen) + 0.5)
                elif name.endswith("w_avg") or name in dict(net.named_parameters()):
                    t.copy_(torch.randn(t.shape, generator=gen))
        return net.eval()

    def dump(net, name):
        path = tmp_path / name
        with open(path, "wb") as f:
            dill.dump(dict(G=net, D=None, G_ema=copy.deepcopy(net)), f)
        return str(path)

    nets = [trained(official.Generator(**kw), 1)]
    nets.append(trained(official.SuperresGenerator(img_resolution=32, path_stem=dump(nets[0], "s16.pkl"),
                                                   head_layers=4, up_factor=2), 2))
    nets.append(trained(official.SuperresGenerator(img_resolution=128, path_stem=dump(nets[1], "s32.pkl"),
                                                   head_layers=5, up_factor=4), 3))
    z = torch.randn(4, 8)
    c = torch.nn.functional.one_hot(torch.tensor([1, 3, 1, 4]), 5).float()
    for i, net in enumerate(nets):
        with torch.no_grad():
            ws_ref = net.mapping(z, c, truncation_psi=0.6)
            img_ref = net.synthesis(ws_ref, noise_mode="const", force_fp32=True).numpy()
        model, v = load_network(dump(net, f"net{i}.pkl"))
        ws = model.apply(v, z.numpy(), c.numpy(), 0.6, method="map")
        img = np.asarray(model.apply(v, ws, method="synthesize")).transpose(0, 3, 1, 2)
        print(f"{type(net).__name__} {getattr(model, 'stages', '')}: img rel-L2 {golden.rel_l2(img, img_ref):.3g}")
        assert golden.rel_l2(ws, ws_ref.numpy()) <= 1e-6 and golden.rel_l2(img, img_ref) <= 1e-5
    assert model.stages == ((4, 2), (5, 4)) and model.head_layer_names == tuple(nets[2].head_layer_names)
    model, v = load_network(dump(nets[0], "stem.pkl"))
    _, upd = model.apply(v, z.numpy(), c.numpy(), update_emas=True, mutable=["buffers"])
    with torch.no_grad():
        nets[0].mapping(z, c, update_emas=True)
    np.testing.assert_array_equal(upd["buffers"]["mapping"]["w_avg"], nets[0].mapping.w_avg.numpy())
