"""NVlabs network pickles (gigajax.compat.stylegan2_pkl).

Official-format pickles are written here with torch: stand-in persistent classes pickle exactly as
NVlabs' `torch_utils.persistence` does (`_reconstruct_persistent_obj(meta)` with module_src,
class_name and the torch.nn.Module `__dict__`), holding a tiny gigajax Generator / Discriminator
converted by `variables_to_official`. The loader must give back torch's own `state_dict()`
bitwise, in both storage formats, for float16 and strided tensors, and must refuse foreign names
without running anything. With GIGAJAX_NVLABS_SRC pointing at an NVlabs/stylegan3 checkout, the
real official networks are pickled and compared too.
"""

import collections
import io
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import jax
import numpy as np
import pytest

from gigajax.compat.golden import rel_l2
from gigajax.compat.stylegan2_convert import variables_to_official
from gigajax.compat.stylegan2_pkl import NetworkPickleError, load_network, load_network_pkl, load_stylegan2, main
from gigajax.models.stylegan2 import Discriminator, Generator

G_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=1, channel_base=64, channel_max=16,
                num_fp16_res=0, mapping_kwargs=dict(num_layers=2))
D_KWARGS = dict(c_dim=0, img_resolution=8, img_channels=1, channel_base=64, channel_max=16, num_fp16_res=0,
                epilogue_kwargs=dict(mbstd_group_size=2))
BUFFERS = ("w_avg", "noise_const", "resample_filter", "magnitude_ema", "freqs", "phases", "transform", "up_filter",
           "down_filter")
MARKER = "gigajax_module_src_ran"
# Stand-in for the pickled networks_stylegan2.py: its class names tell the architecture; its code
# must never run (it would write MARKER into the working directory).
SG2_SRC = "\n".join(f"class {c}(torch.nn.Module):\n    pass\n" for c in (
    "FullyConnectedLayer", "Conv2dLayer", "MappingNetwork", "SynthesisLayer", "ToRGBLayer", "SynthesisBlock",
    "SynthesisNetwork", "Generator", "DiscriminatorBlock", "MinibatchStdLayer", "DiscriminatorEpilogue",
    "Discriminator")) + f"\nopen({MARKER!r}, 'w').close()\n"
SG3_SRC = "class MappingNetwork:\n    pass\nclass SynthesisInput:\n    pass\nclass Generator:\n    pass\n"


# --- fixtures: a tiny gigajax G and D, fake official modules -----------------------------------

def _randomize(tree, seed):
    """Every leaf random, so a swapped or mis-transposed tensor cannot go unnoticed."""
    leaves, treedef = jax.tree.flatten(tree)
    rng = np.random.RandomState(seed)
    return jax.tree.unflatten(treedef, [np.asarray(rng.randn(*np.shape(x)), np.float32) for x in leaves])


@pytest.fixture(scope="module")
def tiny():
    g, d = Generator.create(**G_KWARGS), Discriminator(**D_KWARGS)
    z = np.random.RandomState(0).randn(2, 8).astype(np.float32)
    img = np.random.RandomState(1).randn(2, 8, 8, 1).astype(np.float32)
    gv = _randomize(jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), z, None, noise_mode="const")), 2)
    dv = _randomize(jax.eval_shape(lambda: d.init(jax.random.PRNGKey(0), img, None)), 3)
    g_fn = jax.jit(lambda v, z: g.apply(v, z, None, 0.7, noise_mode="const"))
    return types.SimpleNamespace(g=g, d=d, gv=gv, dv=dv, z=z, img=img, g_fn=g_fn,
                                 g_state=variables_to_official(gv), d_state=variables_to_official(dv))


@pytest.fixture
def official_names(monkeypatch):
    """Fake `torch_utils.persistence` and `dnnlib.util` modules, so that pickles name the official
    functions and classes. Loading must never call them."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("the official reconstruct function was called")

    _reconstruct_persistent_obj.__module__ = persistence.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"   # pickle names it by these
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")
    easydict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    util.EasyDict = easydict
    for name, module in {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
                         "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=easydict)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a wrongly executed module_src would leave MARKER
    yield
    assert not (tmp_path / MARKER).exists(), "pickled module source was executed"


class _PersistentStub:
    """Pickles like an instance of an NVlabs persistent class (no torch needed): `state` stands for
    the instance __dict__."""

    def __init__(self, names, class_name, module_src, state):
        self.names, self.meta = names, dict(type="class", version=6, module_src=module_src,
                                            class_name=class_name, state=state)

    def __reduce__(self):
        return self.names.reconstruct, (self.meta,), None


def _empty_module_state(init_kwargs):
    od = collections.OrderedDict
    return dict(training=False, _parameters=od(), _buffers=od(), _non_persistent_buffers_set=set(), _modules=od(),
                _init_args=(), _init_kwargs=init_kwargs)


# --- torch-written pickles ---------------------------------------------------------------------

def _persistent_module_class(torch, names, module_src=SG2_SRC):
    class Persistent(torch.nn.Module):
        """A torch.nn.Module that pickles as NVlabs' persistence wrapper does: meta.state is the
        instance __dict__ (_parameters, _buffers, _modules, hooks, _init_kwargs, attributes)."""

        def __init__(self, class_name, init_kwargs=None):
            super().__init__()
            self.stub_class_name = class_name
            self._init_args = ()
            self._init_kwargs = init_kwargs if init_kwargs is not None else {}

        def __reduce__(self):
            meta = dict(type="class", version=6, module_src=module_src, class_name=self.stub_class_name,
                        state=self.__dict__)
            return names.reconstruct, (meta,), None

    return Persistent


def _tensor(torch, value, half=False, strided=False):
    """`value` as a float32 / float16 tensor; `strided`: non-contiguous -- transposed (2-D),
    channels_last (4-D), or a view at offset 3 inside a larger storage (1-D, 0-D)."""
    t = torch.from_numpy(value).to(torch.float16 if half else torch.float32).clone()
    if not strided:
        return t
    if t.ndim == 2:
        return t.t().contiguous().t()
    if t.ndim == 4:
        return t.contiguous(memory_format=torch.channels_last)
    flat = torch.zeros(t.numel() + 5, dtype=t.dtype)
    flat[3:3 + t.numel()] = t.reshape(-1)
    return flat[3:3 + t.numel()].view(t.shape)


def _module_tree(torch, names, state, class_name, init_kwargs, half=False, strided=False, module_src=SG2_SRC):
    """Flat official state -> a tree of Persistent modules as the official classes hold it."""
    persistent = _persistent_module_class(torch, names, module_src)
    root = persistent(class_name, init_kwargs)
    for key, value in state.items():
        *path, leaf = key.split(".")
        node = root
        for p in path:
            if p not in node._modules:
                node.add_module(p, persistent("Layer"))
            node = node._modules[p]
        t = _tensor(torch, value, half, strided)
        if leaf in BUFFERS:
            node.register_buffer(leaf, t)
        else:
            node.register_parameter(leaf, torch.nn.Parameter(t, requires_grad=False))
    # What official modules also hold: absent bias / buffer, a non-persistent buffer, numpy gains.
    root.register_parameter("absent_bias", None)
    root.register_buffer("absent_buffer", None)
    root.register_buffer("scratch", torch.ones(3), persistent=False)
    root.weight_gain = np.float64(0.125)
    root.block_resolutions = [4, 8]
    return root


def _zip_storages(monkeypatch, torch):
    """Storages pickled in torch's zip format instead of the legacy one torch itself uses."""
    def reduce(self):
        b = io.BytesIO()
        torch.save(self, b, _use_new_zipfile_serialization=True)
        return torch.storage._load_from_bytes, (b.getvalue(),)
    monkeypatch.setattr(torch.storage.TypedStorage, "__reduce__", reduce)


def _write_official(path, torch, names, tiny, storage_format="legacy", **layout):
    """dict(G, D, G_ema, ...) as NVlabs' training loop pickles it; returns what was pickled."""
    easy = names.EasyDict
    g_kwargs = dict(G_KWARGS, mapping_kwargs=easy(G_KWARGS["mapping_kwargs"]))
    d_kwargs = dict(D_KWARGS, epilogue_kwargs=easy(D_KWARGS["epilogue_kwargs"]))
    torch.manual_seed(0)
    nets = dict(G=_module_tree(torch, names, tiny.g_state, "Generator", g_kwargs, **layout),
                D=_module_tree(torch, names, tiny.d_state, "Discriminator", d_kwargs, **layout),
                G_ema=_module_tree(torch, names, tiny.g_state, "Generator", g_kwargs, **layout))
    extra = dict(training_set_kwargs=easy(path="ffhq.zip", resolution=8, use_labels=False),
                 augment_pipe=torch.nn.Sequential(torch.nn.Linear(2, 3)),   # a stock torch module
                 counts=torch.arange(5).to(torch.uint16),
                 bf16=torch.tensor([1.5, -2.0], dtype=torch.bfloat16))
    with pytest.MonkeyPatch.context() as mp:
        if storage_format == "zip":
            _zip_storages(mp, torch)
        # Python 3.7 (stylegan2-ada-pytorch's) pickled with protocol 3 by default, 3.8+ with 4.
        data = pickle.dumps(dict(nets, **extra), protocol=3 if storage_format == "legacy" else 5)
    # The test must exercise the format it names: zip storages carry the zip magic.
    assert (b"PK\x03\x04" in data) == (storage_format == "zip")
    Path(path).write_bytes(data)
    return dict(nets, **extra)


def _torch_state(module):
    return {k: v.numpy() for k, v in module.state_dict().items()}


def _assert_same_state(got, want):
    assert list(got) == list(want)    # torch's order: own parameters, own buffers, submodules
    for key, ref in want.items():
        assert got[key].dtype == ref.dtype and got[key].shape == ref.shape, key
        assert got[key].flags.c_contiguous, key
        np.testing.assert_array_equal(got[key], ref, err_msg=key)


def _assert_same_tree(got, want):
    got_leaves, got_def = jax.tree.flatten(got)
    want_leaves, want_def = jax.tree.flatten(jax.tree.map(np.asarray, want))
    assert got_def == want_def
    for a, b in zip(got_leaves, want_leaves):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("storage_format", ["legacy", "zip"])
def test_official_to_ours_to_official_is_identity(storage_format, tiny, official_names, tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "network-snapshot.pkl"
    nets = _write_official(path, torch, official_names, tiny, storage_format)

    loaded = load_network_pkl(path)
    assert sorted(loaded) == ["D", "G", "G_ema", "augment_pipe", "bf16", "counts", "training_set_kwargs"]
    for key in ("G", "D", "G_ema"):
        _assert_same_state(loaded[key].state_dict, _torch_state(nets[key]))
        assert loaded[key].architecture == "stylegan2"
    g = loaded["G_ema"]
    assert g.class_name == "Generator" and g.init_kwargs == G_KWARGS and g.init_args == ()
    assert type(g.init_kwargs["mapping_kwargs"]) is dict and g.num_params() == sum(
        v.size for k, v in tiny.g_state.items() if k.rsplit(".", 1)[1] not in BUFFERS)
    assert g.buffers == {k for k in tiny.g_state if k.rsplit(".", 1)[1] in BUFFERS}
    assert loaded["D"].init_kwargs == D_KWARGS
    assert loaded["training_set_kwargs"] == dict(path="ffhq.zip", resolution=8, use_labels=False)
    pipe = loaded["augment_pipe"]
    assert pipe.class_name == "torch.nn.modules.container.Sequential" and pipe.architecture == "unknown"
    _assert_same_state(pipe.state_dict, _torch_state(nets["augment_pipe"]))
    np.testing.assert_array_equal(loaded["counts"], np.arange(5, dtype=np.uint16))
    assert loaded["counts"].dtype == np.uint16 and str(loaded["bf16"].dtype) == "bfloat16"
    np.testing.assert_array_equal(loaded["bf16"].astype(np.float32), [1.5, -2.0])

    # official -> ours: the very variables we started from; ours -> official: the same state.
    G, gv = load_stylegan2(path, which="G_ema")
    D, dv = load_stylegan2(path, which="D")
    _assert_same_tree(gv, tiny.gv)
    _assert_same_tree(dv, tiny.dv)
    for state, variables in ((tiny.g_state, gv), (tiny.d_state, dv)):
        back = variables_to_official(variables)
        assert sorted(back) == sorted(state)
        for key in state:
            assert back[key].dtype == state[key].dtype
            np.testing.assert_array_equal(back[key], state[key], err_msg=key)
    np.testing.assert_array_equal(np.asarray(tiny.g_fn(gv, tiny.z)), np.asarray(tiny.g_fn(tiny.gv, tiny.z)))
    np.testing.assert_array_equal(np.asarray(D.apply(dv, tiny.img, None)),
                                  np.asarray(tiny.d.apply(tiny.dv, tiny.img, None)))


@pytest.mark.parametrize("storage_format", ["legacy", "zip"])
def test_float16_and_strided_tensors(storage_format, tiny, official_names, tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "half.pkl"
    nets = _write_official(path, torch, official_names, tiny, storage_format, half=True, strided=True)
    w = nets["G"]._modules["mapping"]._modules["fc0"]._parameters["weight"]
    assert not w.is_contiguous() and w.dtype == torch.float16           # what the test is about
    assert nets["G"]._modules["mapping"]._buffers["w_avg"].storage_offset() == 3

    loaded = load_network_pkl(path)
    for key in ("G", "D"):
        _assert_same_state(loaded[key].state_dict, _torch_state(nets[key]))
        assert all(v.dtype == np.float16 for v in loaded[key].state_dict.values())
    _, gv = load_stylegan2(path, which="G")
    want = variables_to_official(jax.tree.map(lambda x: np.asarray(x).astype(np.float16).astype(np.float32), tiny.gv))
    back = variables_to_official(gv)
    for key in want:
        np.testing.assert_array_equal(back[key], want[key], err_msg=key)


def test_loading_does_not_import_torch(tiny, official_names, tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "n.pkl"
    _write_official(path, torch, official_names, tiny)
    code = ("import sys; from gigajax.compat.stylegan2_pkl import load_network_pkl; "
            f"n = load_network_pkl({str(path)!r}); assert n['G'].num_params() > 0; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_command_line(tiny, official_names, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    path = tmp_path / "n.pkl"
    _write_official(path, torch, official_names, tiny)
    assert main([str(path), "--out", str(tmp_path / "vars.npz")]) == 0
    out = capsys.readouterr().out
    n_params = sum(v.size for k, v in tiny.g_state.items() if k.rsplit(".", 1)[1] not in BUFFERS)
    assert f"G_ema: Generator (stylegan2), {n_params:,} parameters" in out
    assert "'mapping_kwargs': {'num_layers': 2}" in out and "training_set_kwargs:" in out
    with np.load(tmp_path / "vars.npz") as z:
        np.testing.assert_array_equal(z["params/mapping/fc0/weight"], tiny.gv["params"]["mapping"]["fc0"]["weight"])
        assert "buffers/mapping/w_avg" in z.files
    assert main([str(path), "--which", "G_mapping", "--out", str(tmp_path / "x.npz")]) == 1
    assert "no network 'G_mapping'" in capsys.readouterr().err
    assert main([str(path), "--which", "augment_pipe", "--out", str(tmp_path / "x.npz")]) == 1
    assert "is a torch.nn.modules.container.Sequential of unknown architecture" in capsys.readouterr().err


def test_truncated_pickle(tiny, official_names, tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "n.pkl"
    _write_official(path, torch, official_names, tiny)
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    with pytest.raises(NetworkPickleError, match=r"cut\.pkl: truncated or corrupt pickle"):
        load_network_pkl(cut)


# --- without torch: refusals and clear errors ----------------------------------------------------

def test_refuses_os_system_without_running_it(tmp_path):
    cmd = f"touch {MARKER}".encode()
    # GLOBAL os.system, the command, TUPLE1, REDUCE: pickle.load would run the command.
    evil = b"\x80\x02cos\nsystem\nX" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R."
    path = tmp_path / "evil.pkl"
    path.write_bytes(evil)
    with pytest.raises(NetworkPickleError, match=r"evil\.pkl: refusing to load os\.system"):
        load_network_pkl(path)
    nested = pickle.dumps({"G": None}, protocol=2)[:-2] + b"cbuiltins\neval\n."   # after valid data
    with pytest.raises(NetworkPickleError, match=r"<memory>: refusing to load builtins\.eval"):
        f = io.BytesIO(nested)
        f.name = "<memory>"
        load_network_pkl(f)


def test_module_src_is_kept_as_text_never_run(official_names, tmp_path):
    od = collections.OrderedDict
    state = _empty_module_state(official_names.EasyDict(z_dim=8, mapping_kwargs=official_names.EasyDict()))
    state["_modules"] = od(mapping=_PersistentStub(official_names, "MappingNetwork", SG2_SRC, _empty_module_state({})))
    path = tmp_path / "g.pkl"
    path.write_bytes(pickle.dumps(dict(G=_PersistentStub(official_names, "Generator", SG2_SRC, state))))
    net = load_network_pkl(path)["G"]
    assert net.module_src == SG2_SRC and net.state_dict == {} and net.init_kwargs == dict(z_dim=8, mapping_kwargs={})
    assert type(net.init_kwargs["mapping_kwargs"]) is dict
    # (the autouse fixture checks that MARKER was not written)


def test_stylegan3_generator_loads_through_load_network(official_names, tmp_path):
    # The golden StyleGAN3-T case's state, pickled as NVlabs' training loop would, loads into our
    # StyleGAN3 Generator and reproduces the golden image; load_stylegan2 refuses it by name.
    torch = pytest.importorskip("torch")
    from gigajax.compat import golden
    from gigajax.compat.layout import nhwc_to_nchw
    from gigajax.compat.stylegan3_convert import design_filters
    from gigajax.compat.stylegan3_convert import variables_to_official as sg3_to_official
    case = golden.load(Path(__file__).parent / "golden" / "stylegan3_generator_t_uncond.npz")
    kw = dict(case.meta["init_kwargs"], mapping_kwargs=official_names.EasyDict(case.meta["init_kwargs"]["mapping_kwargs"]))
    g = _module_tree(torch, official_names, case.state, "Generator", kw, module_src=SG3_SRC)
    path = tmp_path / "sg3.pkl"
    path.write_bytes(pickle.dumps(dict(G=g, G_ema=g)))
    nets = load_network_pkl(path)
    assert nets["G_ema"].architecture == "stylegan3" and nets["G_ema"].class_name == "Generator"
    G, variables = load_network(path)
    # jitted: run eagerly, each of the synthesis's ~1,000 ops compiles on its own (70 s, not 15)
    ws = jax.jit(lambda v, z: G.apply(v, z, None, 0.7, method="map"))(variables, case.inputs["z"])
    img = jax.jit(lambda v, ws: G.apply(v, ws, method="synthesize", noise_mode="const"))(variables, ws)
    img = nhwc_to_nchw(np.asarray(img))
    assert golden.rel_l2(img, case.outputs["img"]) < 1e-4
    back = sg3_to_official(variables, design_filters(G.design()))
    assert sorted(back) == sorted(case.state)
    for key, ref in case.state.items():
        np.testing.assert_array_equal(back[key], ref, err_msg=key)
    with pytest.raises(NotImplementedError, match=r"sg3\.pkl \['G_ema'\] is a Generator of stylegan3 "
                                                  r"architecture, not a StyleGAN2.*\(load it with load_network\)"):
        load_stylegan2(path)
    with pytest.raises(KeyError, match=r"no network 'D'; it has \['G', 'G_ema'\]"):
        load_network(path, which="D")


@pytest.mark.parametrize("content, message", [
    (b"hello, world\n", r"not a pickle \(starts with b'hell'\), expected an NVlabs network pickle"),
    (b"PK\x03\x04rest", r"a zip archive \(a torch\.save checkpoint\?\)"),
    (pickle.dumps({"weights": [1, 2]}), r"holds .* with keys \['weights'\]; expected a dict with networks"),
    (pickle.dumps([1, 2]), r"holds \[1, 2\]; expected a dict with networks"),
    (pickle.dumps({"G": [1, 2]}), r"\['G'\] is \[1, 2\], expected a persistent network"),
    (b"\x80\x02cdnnlib.tflib.network\nNetwork\n.", r"this is a TensorFlow StyleGAN/StyleGAN2 pickle.*legacy\.py"),
    (pickle.dumps({"G": None})[:5], r"truncated or corrupt pickle"),
], ids=["text", "zip", "foreign-dict", "list", "not-a-network", "tensorflow", "truncated"])
def test_clear_errors(content, message, tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(NetworkPickleError, match=r"bad\.pkl: " + message):
        load_network_pkl(path)


# --- optional: the real official networks ---------------------------------------------------------

@pytest.fixture
def nvlabs(monkeypatch):
    """NVlabs/stylegan3's networks_stylegan2 from GIGAJAX_NVLABS_SRC (a checkout outside gigajax);
    the modules it imports are dropped again afterwards."""
    src = os.environ.get("GIGAJAX_NVLABS_SRC")
    if not src:
        pytest.skip("GIGAJAX_NVLABS_SRC is not set (a checkout of NVlabs/stylegan3)")
    torch = pytest.importorskip("torch")
    before = set(sys.modules)
    monkeypatch.syspath_prepend(src)
    try:
        import pkg_resources  # noqa: F401  (conv2d_gradfix imports parse_version from it)
    except ImportError:
        from packaging.version import parse
        monkeypatch.setitem(sys.modules, "pkg_resources", types.SimpleNamespace(parse_version=parse))
    import dnnlib
    from training import networks_stylegan2
    yield torch, dnnlib, networks_stylegan2
    root = os.path.abspath(src)
    for name in set(sys.modules) - before:   # only the checkout's modules: others may be lazily loaded
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(root):
            del sys.modules[name]


def test_official_networks_match(nvlabs, tmp_path):
    torch, dnnlib, official = nvlabs
    import copy
    torch.manual_seed(0)
    common = dict(c_dim=3, img_resolution=16, img_channels=3)
    G = official.Generator(z_dim=16, w_dim=16, mapping_kwargs=dnnlib.EasyDict(num_layers=2), channel_base=256,
                           channel_max=32, num_fp16_res=2, conv_clamp=256, fused_modconv_default="inference_only",
                           **common)
    D = official.Discriminator(channel_base=256, channel_max=32, num_fp16_res=2, conv_clamp=256,
                               block_kwargs=dnnlib.EasyDict(), mapping_kwargs=dnnlib.EasyDict(),
                               epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=2), **common)
    with torch.no_grad():   # trained-looking values: zero biases / noise strengths would hide mistakes
        for p in list(G.parameters()) + list(D.parameters()):
            p.add_(0.1 * torch.randn_like(p))
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg))
    snapshot = {name: copy.deepcopy(m).eval().requires_grad_(False).cpu() for name, m in
                (("G", G), ("D", D), ("G_ema", G))}   # as training_loop.py writes it
    path = tmp_path / "official.pkl"
    with open(path, "wb") as f:
        pickle.dump(dict(training_set_kwargs=dict(resolution=16), augment_pipe=None, **snapshot), f)

    z = torch.randn(4, 16)
    c = torch.nn.functional.one_hot(torch.arange(4) % 3, 3).float()
    with torch.no_grad():
        img_ref = snapshot["G_ema"](z, c, truncation_psi=0.7, noise_mode="const").numpy()
        logits_ref = snapshot["D"](torch.from_numpy(img_ref), c).numpy()
    nets = load_network_pkl(path)
    for key in ("G", "D", "G_ema"):
        _assert_same_state(nets[key].state_dict, _torch_state(snapshot[key]))

    G2, gv = load_stylegan2(path, which="G_ema")
    D2, dv = load_stylegan2(path, which="D")
    img = np.asarray(G2.apply(gv, z.numpy(), c.numpy(), 0.7, noise_mode="const")).transpose(0, 3, 1, 2)
    logits = np.asarray(D2.apply(dv, img_ref.transpose(0, 2, 3, 1), c.numpy()))
    err_img, err_logits = rel_l2(img, img_ref), rel_l2(logits, logits_ref)
    print(f"official vs gigajax: G_ema img rel-L2 {err_img:.3g}, D logits rel-L2 {err_logits:.3g}")
    assert err_img <= 1e-5 and err_logits <= 1e-5


def test_stylegan2_ada_pytorch_kwargs():
    """stylegan2-ada-pytorch's Generator took synthesis_kwargs={...}; positional init args get names."""
    from gigajax.compat.stylegan2_pkl import Network, stylegan2_kwargs
    net = Network("Generator", (512, 0), dict(w_dim=512, img_resolution=1024, img_channels=3,
                                              mapping_kwargs=dict(num_layers=8),
                                              synthesis_kwargs=dict(channel_base=32768, num_fp16_res=4)),
                  {}, frozenset(), SG2_SRC)
    assert stylegan2_kwargs(net) == dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
                                         mapping_kwargs=dict(num_layers=8), channel_base=32768, num_fp16_res=4)
