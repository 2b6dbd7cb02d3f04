"""Official NVlabs network pickles (stylegan2-ada-pytorch, stylegan3: `stylegan2-ffhq-1024x1024.pkl`,
`network-snapshot-*.pkl`, ...), and StyleGAN-XL's generators (which use the same persistence, written
with dill), read without torch, without the official source code and without running any pickled code.

    nets = load_network_pkl("stylegan2-ffhq-1024x1024.pkl")   # {'G': Network, 'D': ..., 'G_ema': ...}
    G, variables = load_stylegan2("stylegan2-ffhq-1024x1024.pkl", which="G_ema")
    G, variables = load_network("stylegan3-t-ffhq-1024x1024.pkl")          # any supported kind

    python -m gigajax.compat.stylegan2_pkl PATH [--which G_ema] [--out vars.npz]

What such a file holds (learnt from NVlabs' `torch_utils/persistence.py` and torch's own pickling):
- A plain pickle of a dict: 'G', 'D', 'G_ema', 'augment_pipe' (networks), 'training_set_kwargs'.
- Each network is a persistent class instance. It pickles as
  `torch_utils.persistence._reconstruct_persistent_obj(meta)`, meta = dict(type='class', version,
  module_src, class_name, state): `module_src` is the whole source file of the network's module,
  which the official loader `exec`s; `state` is the object's `__dict__`, i.e. torch.nn.Module's
  `_parameters` / `_buffers` / `_modules` OrderedDicts, `_non_persistent_buffers_set`, hook dicts,
  the persistence wrapper's `_init_args` / `_init_kwargs`, and plain attributes (ints, strings,
  numpy float64 gains).
- Tensors reduce to `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
  hooks[, metadata])` (parameters wrap that in `_rebuild_parameter`), and each storage to
  `torch.storage._load_from_bytes(b)` where `b` is a `torch.save` of that storage alone. torch has
  always written these bytes in the legacy (pre-zip) format -- `TypedStorage.__reduce__` passes
  `_use_new_zipfile_serialization=False` -- but the zip format is read too.

Here a restricted unpickler resolves only a whitelist of names, each to a function of ours that
builds inert records and numpy arrays; `module_src` is kept as text and never executed. Any other
name (e.g. `os.system`) stops the load with an error naming it and the file.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import io
import os
import pickle
import re
import sys
import zipfile
from typing import Mapping

import ml_dtypes
import numpy as np

NETWORK_KEYS = ("G", "D", "G_ema")


class NetworkPickleError(ValueError):
    """The file is not an official network pickle, is damaged, or references a forbidden name."""


# --- records the unpickler builds ------------------------------------------------------------

class _Persistent:
    """What `_reconstruct_persistent_obj(meta)` stands for: a class name, its module's source
    text (kept, never run) and the instance `__dict__`."""

    def __init__(self, meta):
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise NetworkPickleError(f"persistent object meta {_brief(meta)}: expected a dict with type='class'")
        for field, kind in (("class_name", str), ("module_src", str), ("state", dict)):
            if not isinstance(meta.get(field), kind):
                raise NetworkPickleError(f"persistent object meta[{field!r}] is {_brief(meta.get(field))}: "
                                         f"expected {kind.__name__}")
        self.class_name = meta["class_name"]
        self.module_src = meta["module_src"]
        self.state = meta["state"]


class _TorchModule:
    """A stock `torch.nn.modules.*` instance (ModuleList, Sequential, ...): the class is only a name
    here; pickle fills the instance `__dict__` through `__setstate__`."""

    torch_class = "torch.nn.Module"   # set per placeholder subclass
    state: dict = {}                  # until __setstate__; never mutated

    @property
    def class_name(self):
        return self.torch_class

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise NetworkPickleError(f"{self.torch_class} state is {_brief(state)}: expected a dict")
        self.state = state


def _reconstructor(cls, base, state):
    """copyreg._reconstructor (protocol 0/1 object pickles), allowed for torch module placeholders."""
    if not (isinstance(cls, type) and issubclass(cls, _TorchModule)) or base is not object or state is not None:
        raise NetworkPickleError(f"copyreg._reconstructor({_brief(cls)}, ...): only stock torch modules are allowed")
    return cls.__new__(cls)


def _reconstruct_persistent_obj(meta):
    # A function, not the class itself: find_class must not hand pickle a class it could
    # instantiate without validation (NEWOBJ).
    return _Persistent(meta)


class _EasyDict(dict):
    """dnnlib.EasyDict while unpickling (a dict subclass keeps an instance `__dict__` for BUILD);
    `_plain` turns it into a dict."""


class _Storage:
    """A torch storage: `data` is a 1-D native-endian numpy array of its elements."""

    def __init__(self, data):
        self.data = data


@dataclasses.dataclass(frozen=True)
class _StorageType:
    """torch.FloatStorage & co.: the element dtype."""
    name: str
    dtype: np.dtype


class _TensorType:
    """torch.Tensor / torch.nn.Parameter as the `type` argument of `_rebuild_from_type_v2`."""

    def __init__(self, name):
        self.name = name


# --- dtypes ------------------------------------------------------------------------------------

_DTYPES = {  # torch dtype name -> numpy dtype (aliases as torch spells them)
    "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "bfloat16": ml_dtypes.bfloat16,
    "int64": np.int64, "long": np.int64, "int32": np.int32, "int": np.int32, "int16": np.int16,
    "short": np.int16, "int8": np.int8, "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32,
    "uint64": np.uint64, "bool": np.bool_, "complex64": np.complex64, "cfloat": np.complex64,
    "complex128": np.complex128, "cdouble": np.complex128,
}
_STORAGE_DTYPES = {  # torch.<Name>Storage -> numpy dtype; UntypedStorage holds bytes
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "ComplexFloatStorage": np.complex64, "ComplexDoubleStorage": np.complex128, "UntypedStorage": np.uint8,
}


def _storage_types():
    out = {}
    for name, dtype in _STORAGE_DTYPES.items():
        st = _StorageType(name, np.dtype(dtype))
        out[("torch", name)] = st
        out[("torch.cuda", name)] = st  # a GPU storage's bytes are the same; they load to host here
    out[("torch.storage", "UntypedStorage")] = out[("torch", "UntypedStorage")]  # the class's own module
    return out


# --- storages: the bytes of torch.save(storage) ---------------------------------------------------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C   # torch.serialization.MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001                  # torch.serialization.PROTOCOL_VERSION
_ZIP_MAGIC = b"PK\x03\x04"


class _ValuesOnly(pickle.Unpickler):
    """For the legacy header pickles (magic number, protocol, sys_info, storage keys): plain values."""

    def find_class(self, module, name):
        raise NetworkPickleError(f"storage header references {module}.{name}: expected plain values")


class _StorageRefs(pickle.Unpickler):
    """The object pickle inside torch.save(storage): storage types by name, storages by persistent id
    ('storage', type, key, location, numel[, view]); each id resolves through `resolve(...)`."""

    def __init__(self, file, resolve):
        super().__init__(file)
        self._types = _storage_types()
        self._resolve = resolve

    def find_class(self, module, name):
        if (module, name) in self._types:
            return self._types[(module, name)]
        raise NetworkPickleError(f"storage data references {module}.{name}: expected a torch storage type")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and _ascii(pid[0]) == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[4], int) and pid[4] >= 0):
            raise NetworkPickleError(f"storage persistent id {_brief(pid)}: expected ('storage', type, key, "
                                     f"location, numel[, view])")
        return self._resolve(pid[1].dtype, _ascii(pid[2]), pid[4], pid[5] if len(pid) == 6 else None)


def _ascii(s):
    return s.decode("ascii") if isinstance(s, bytes) else str(s)


def _load_from_bytes(b):
    """torch.storage._load_from_bytes: a storage saved by torch.save, zip or legacy format."""
    if not isinstance(b, (bytes, bytearray)):
        raise NetworkPickleError(f"_load_from_bytes({_brief(b)}): expected bytes")
    b = bytes(b)
    storage = _zip_storage(b) if b.startswith(_ZIP_MAGIC) else _legacy_storage(b)
    if not isinstance(storage, _Storage):
        raise NetworkPickleError(f"storage bytes hold {_brief(storage)}: expected a single storage")
    return storage


def _zip_storage(b):
    """torch>=1.6 zip format: `<root>/data.pkl` (the object, storages as persistent ids),
    `<root>/data/<key>` (raw bytes per storage), `<root>/byteorder` (absent = little)."""
    with zipfile.ZipFile(io.BytesIO(b)) as z:
        pkl = [n for n in z.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
        if len(pkl) != 1:
            raise NetworkPickleError(f"zip storage has records {z.namelist()[:6]}: expected one <root>/data.pkl")
        root = pkl[0][:-len("data.pkl")]
        order = z.read(root + "byteorder").decode() if root + "byteorder" in z.namelist() else "little"
        cache = {}

        def resolve(dtype, key, numel, view):
            if key not in cache:
                raw = z.read(f"{root}data/{key}")
                cache[key] = _storage_array(raw, dtype, numel, order, f"zip record data/{key}")
            return _Storage(_view(cache[key], view))

        return _StorageRefs(io.BytesIO(z.read(pkl[0])), resolve).load()


def _legacy_storage(b):
    """Legacy format, as torch.save(..., _use_new_zipfile_serialization=False) writes it: pickles of
    the magic number, the protocol version and sys_info; the object pickle (storages as persistent
    ids); the sorted list of storage keys; then per key an int64 element count and the raw bytes."""
    f = io.BytesIO(b)
    try:
        magic, protocol, sys_info = (_ValuesOnly(f).load() for _ in range(3))
    except (pickle.UnpicklingError, EOFError) as e:
        raise NetworkPickleError(f"storage bytes are neither torch's zip nor legacy format ({e})") from None
    if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
        raise NetworkPickleError(f"storage header magic={_brief(magic)} protocol={_brief(protocol)}: "
                                 f"expected torch's legacy {_LEGACY_MAGIC:#x}, {_LEGACY_PROTOCOL}")
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        # Which byte order a big-endian writer used for the raw data differs across torch versions.
        raise NetworkPickleError(f"storage saved with sys_info {_brief(sys_info)}: only little-endian is supported")
    roots = {}  # key -> [dtype, numel, data]; data arrives after the object pickle

    def resolve(dtype, key, numel, view):
        entry = roots.setdefault(key, [dtype, numel, None])
        return _PendingStorage(entry, view)

    obj = _StorageRefs(f, resolve).load()
    keys = _ValuesOnly(f).load()
    for key in keys:
        if key not in roots:
            raise NetworkPickleError(f"storage key {key!r} was not referenced by the object")
        entry = roots[key]
        count = f.read(8)
        numel = int.from_bytes(count, "little", signed=True) if len(count) == 8 else -1
        if numel != entry[1]:
            raise NetworkPickleError(f"storage {key!r}: {numel} elements recorded, {entry[1]} expected (truncated?)")
        nbytes = numel * entry[0].itemsize
        entry[2] = _storage_array(f.read(nbytes), entry[0], numel, "little", f"storage {key!r}")
    if not isinstance(obj, _PendingStorage) or obj.entry[2] is None:
        raise NetworkPickleError(f"legacy storage bytes hold {_brief(obj)}: expected a single storage with data")
    return _Storage(_view(obj.entry[2], obj.view))


class _PendingStorage:
    """A legacy-format storage whose bytes come after the object pickle."""

    def __init__(self, entry, view):
        self.entry, self.view = entry, view


def _storage_array(raw, dtype, numel, order, what):
    nbytes = numel * dtype.itemsize
    if len(raw) < nbytes:
        raise NetworkPickleError(f"{what}: {len(raw)} bytes, {nbytes} expected ({numel} x {dtype}); truncated?")
    if order not in ("little", "big"):
        raise NetworkPickleError(f"{what}: byteorder {order!r}: expected 'little' or 'big'")
    data = np.frombuffer(raw, dtype=dtype.newbyteorder("<" if order == "little" else ">"), count=numel)
    return data if data.dtype.isnative else data.astype(dtype)


def _view(data, view):
    """Legacy storage views (key, offset, size) in elements; torch stopped writing them in 1.x."""
    if view is None:
        return data
    if not (isinstance(view, tuple) and len(view) == 3 and all(isinstance(v, int) and v >= 0 for v in view[1:])
            and view[1] + view[2] <= data.size):
        raise NetworkPickleError(f"storage view {_brief(view)}: expected (key, offset, size) inside "
                                 f"{data.size} elements")
    return data[view[1]:view[1] + view[2]]


# --- tensors -----------------------------------------------------------------------------------

def _as_array(storage, offset, size, stride, dtype=None):
    """Tensor `size` with element `stride`s at element `offset` of `storage` -> C-contiguous copy.

    `dtype` (torch>=2.1 `_rebuild_tensor_v3`) reinterprets an untyped (byte) storage. Everything
    is checked before `as_strided`, which would otherwise read past the buffer: pickle's BUILD can
    overwrite attributes of any object, ours included, so `storage.data` is checked here too."""
    if not isinstance(storage, _Storage):
        raise NetworkPickleError(f"tensor storage is {_brief(storage)}: expected torch.storage._load_from_bytes(...)")
    data = storage.data
    if not (type(data) is np.ndarray and data.ndim == 1 and data.flags.c_contiguous and not data.dtype.hasobject):
        raise NetworkPickleError(f"storage data is {_brief(data)}: expected the storage's own elements")
    if dtype is not None:
        if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.itemsize == 0:
            raise NetworkPickleError(f"tensor dtype {_brief(dtype)}: expected a torch dtype")
        if data.nbytes % dtype.itemsize:
            raise NetworkPickleError(f"{data.nbytes}-byte storage does not hold whole {dtype} elements")
        data = data.view(np.uint8).view(dtype)
    size, stride = tuple(size), tuple(stride)
    if not (isinstance(offset, int) and offset >= 0 and len(size) == len(stride)
            and all(isinstance(v, int) and v >= 0 for v in size + stride)):
        raise NetworkPickleError(f"tensor offset={_brief(offset)} size={_brief(size)} stride={_brief(stride)}: "
                                 f"expected non-negative ints, one stride per dimension")
    if 0 in size:
        return np.zeros(size, data.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= data.size:
        raise NetworkPickleError(f"tensor size={size} stride={stride} offset={offset} reaches element {last} "
                                 f"of a {data.size}-element storage")
    view = np.lib.stride_tricks.as_strided(data[offset:], shape=size, strides=[s * data.itemsize for s in stride],
                                           writeable=False)
    return view.copy(order="C")  # owns its memory: the storage bytes can go


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _as_array(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    _check_metadata(metadata)
    return _as_array(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    _check_metadata(metadata)
    return _as_array(storage, storage_offset, size, stride, dtype)


def _check_metadata(metadata):
    # torch writes tensor metadata only for conj / neg bits, which would change the values.
    if metadata:
        raise NetworkPickleError(f"tensor metadata {_brief(metadata)} (conjugate/negative views) is not supported")


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, np.ndarray):
        raise NetworkPickleError(f"parameter data is {_brief(data)}: expected a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    """torch.Tensor subclasses with Python attributes: only plain Tensor / Parameter, state dropped."""
    if not isinstance(new_type, _TensorType) or func not in (_rebuild_tensor_v2, _rebuild_tensor_v3,
                                                              _rebuild_tensor, _rebuild_parameter):
        raise NetworkPickleError(f"_rebuild_from_type_v2({_brief(func)}, {_brief(new_type)}): expected a tensor")
    return func(*args)


# --- the outer unpickler ---------------------------------------------------------------------

def _numpy_multiarray():
    core = getattr(np, "_core", None)  # numpy >= 2; pickles from numpy 1.x name numpy.core
    return core.multiarray if core is not None else np.core.multiarray


def _allowed():
    ma = _numpy_multiarray()
    table = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("dnnlib.util", "EasyDict"): _EasyDict,
        ("dnnlib", "EasyDict"): _EasyDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): _TensorType("torch.Tensor"),
        ("torch.nn.parameter", "Parameter"): _TensorType("torch.nn.Parameter"),
        ("torch.storage", "_load_from_bytes"): _load_from_bytes,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice,
        ("builtins", "complex"): complex,
        ("_codecs", "encode"): _latin1_encode,
        # StyleGAN-XL writes its pickles with dill, which spells some plain values its own way.
        ("dill._dill", "_load_type"): _dill_load_type, ("dill._dill", "_import_module"): _dill_import_module,
        ("dill._dill", "_get_attr"): _dill_get_attr, ("dill._dill", "_create_array"): _dill_create_array,
        # numpy scalars (np.float64 gains) and arrays; numpy validates its own state.
        ("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray,
        ("numpy.core.multiarray", "scalar"): ma.scalar, ("numpy._core.multiarray", "scalar"): ma.scalar,
        ("numpy.core.multiarray", "_reconstruct"): ma._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): ma._reconstruct,
    }
    table.update({("torch", name): np.dtype(dtype) for name, dtype in _DTYPES.items()})
    table.update(_storage_types())
    return table


# --- dill's spellings (StyleGAN-XL pickles with dill.dump) ------------------------------------------
# Each resolves only to what the whitelist above already allows; nothing is imported or run.

_DILL_TYPES = {"set": set, "frozenset": frozenset, "list": list, "tuple": tuple, "dict": dict, "slice": slice,
               "complex": complex, "bytes": bytes, "bytearray": bytearray}


def _dill_load_type(name):
    """dill._dill._load_type('set') (the modules' `_non_persistent_buffers_set`): inert builtin
    containers only, never code, function or class types."""
    if name not in _DILL_TYPES:
        raise NetworkPickleError(f"refusing dill._dill._load_type({_brief(name)}): only the builtin types "
                                 f"{sorted(_DILL_TYPES)} are allowed (nothing was executed)")
    return _DILL_TYPES[name]


@dataclasses.dataclass(frozen=True)
class _ModuleRef:
    """dill._dill._import_module(name), not imported: only a name for `_dill_get_attr`."""
    name: str


def _dill_import_module(name):
    if not isinstance(name, str):
        raise NetworkPickleError(f"dill._dill._import_module({_brief(name)}): expected a module name")
    return _ModuleRef(name)


def _dill_get_attr(module, name):
    """dill._dill._get_attr(_import_module(m), name), as dill 0.3 spells builtin functions such as
    numpy's `scalar`: resolved through the whitelist, like a plain global."""
    if not isinstance(module, _ModuleRef) or not isinstance(name, str):
        raise NetworkPickleError(f"dill._dill._get_attr({_brief(module)}, {_brief(name)}): expected a module "
                                 f"name and an attribute")
    table = _allowed()
    key = (_ALIASES.get(module.name, module.name), name)
    if key not in table:
        raise NetworkPickleError(f"refusing to load {module.name}.{name} (through dill): not an allowed name "
                                 f"(nothing was executed)")
    return table[key]


def _dill_create_array(f, args, state, npdict=None):
    """dill._dill._create_array: numpy's own array reconstruction, then `__setstate__(state)`."""
    if f is not _numpy_multiarray()._reconstruct or npdict:
        raise NetworkPickleError(f"dill._dill._create_array({_brief(f)}, ..., {_brief(npdict)}): expected "
                                 f"numpy's _reconstruct and no instance dict")
    array = f(*args)
    if not isinstance(array, np.ndarray) or type(array) is not np.ndarray:
        raise NetworkPickleError(f"dill._dill._create_array built {_brief(array)}: expected a plain ndarray")
    array.__setstate__(state)
    return array


def _latin1_encode(s, encoding="latin1"):
    """_codecs.encode as protocol-2 pickles use it to spell bytes."""
    if not isinstance(s, str) or encoding not in ("latin1", "latin-1"):
        raise NetworkPickleError(f"_codecs.encode({_brief(s)}, {encoding!r}): expected a str and 'latin1'")
    return s.encode("latin1")


_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg", "numpy.core._multiarray_umath": "numpy.core.multiarray",
            "numpy._core._multiarray_umath": "numpy._core.multiarray"}
_TORCH_MODULE = re.compile(r"torch\.nn\.modules\.\w+$")


class _NetworkUnpickler(pickle.Unpickler):
    def __init__(self, file):
        super().__init__(file)
        self._table = _allowed()
        self._torch_modules = {}   # one placeholder subclass per torch class, so records say which


    def find_class(self, module, name):
        module = _ALIASES.get(module, module)
        if (module, name) in self._table:
            return self._table[(module, name)]
        if _TORCH_MODULE.match(module) and name.isidentifier():
            qualname = f"{module}.{name}"
            if qualname not in self._torch_modules:
                self._torch_modules[qualname] = type(name, (_TorchModule,), {"torch_class": qualname})
            return self._torch_modules[qualname]
        if (module, name) == ("dnnlib.tflib.network", "Network"):
            raise NetworkPickleError("this is a TensorFlow StyleGAN/StyleGAN2 pickle (dnnlib.tflib.network.Network); "
                                     "convert it with NVlabs' legacy.py into the PyTorch format first")
        raise NetworkPickleError(f"refusing to load {module}.{name}: official network pickles reference only "
                                 f"persistent networks, tensors, storages, OrderedDict, EasyDict and numpy "
                                 f"scalars/arrays; this file holds something else (nothing was executed)")

    def persistent_load(self, pid):
        raise NetworkPickleError(f"unexpected persistent id {_brief(pid)}: a network pickle has none "
                                 f"(is this a torch.save checkpoint?)")


# --- public -------------------------------------------------------------------------------------

_CLASS_DEF = re.compile(r"^class\s+(\w+)\s*[(:]", re.MULTILINE)
_XL_MAPPING = re.compile(r"^\s+self\.embed_proj\s*=", re.MULTILINE)


@dataclasses.dataclass(frozen=True, repr=False)
class Network:
    """One network of an official pickle.

    class_name: the class in its module, e.g. 'Generator' (stylegan2 and stylegan3 both have one;
      `architecture` tells them apart).
    init_args, init_kwargs: the constructor arguments the persistence wrapper recorded (plain
      Python: EasyDicts become dicts).
    state_dict: flat official names -> numpy arrays in their stored dtype and official layout, as
      torch's `module.state_dict()` (parameters, then persistent buffers, then submodules).
    buffers: the names in state_dict that are buffers ('mapping.w_avg', '...noise_const', ...).
    module_src: the pickled source of the class's module, as text (never executed here).
    sub_init_kwargs: dotted path of each persistent submodule ('mapping', 'synthesis',
      'synthesis.L0_36_512', ...) -> the constructor kwargs it recorded. A StyleGAN-XL
      SuperresGenerator's stem configuration lives only there.
    """
    class_name: str
    init_args: tuple
    init_kwargs: dict
    state_dict: dict
    buffers: frozenset
    module_src: str
    sub_init_kwargs: dict = dataclasses.field(default_factory=dict)

    @property
    def architecture(self) -> str:
        """'stylegan2' (networks_stylegan2.py, stylegan2-ada-pytorch networks.py), 'stylegan3'
        (networks_stylegan3.py and its derivatives), 'stylegan_xl' (autonomousvision/stylegan-xl's
        networks_stylegan3_resetting.py) or 'unknown', from the classes the pickled module source
        defines."""
        classes = set(_CLASS_DEF.findall(self.module_src))
        if "SynthesisInput" in classes:
            # StyleGAN-XL's networks_stylegan3_resetting.py is StyleGAN3's plus a class embedding.
            return "stylegan_xl" if _XL_MAPPING.search(self.module_src) else "stylegan3"
        if {"MappingNetwork", "SynthesisBlock", "ToRGBLayer", "DiscriminatorBlock", "DiscriminatorEpilogue"} <= classes:
            return "stylegan2"
        return "unknown"

    def num_params(self) -> int:
        return int(sum(v.size for k, v in self.state_dict.items() if k not in self.buffers))

    def __repr__(self):
        return (f"Network({self.class_name}, {self.architecture}, {len(self.state_dict)} tensors, "
                f"{self.num_params():,} parameters, init_kwargs={self.init_kwargs})")


def load_network_pkl(path_or_file) -> dict:
    """An official network pickle -> dict of its entries: 'G', 'D', 'G_ema' (and 'augment_pipe')
    as `Network`s, other entries ('training_set_kwargs', ...) as plain Python.

    Raises NetworkPickleError naming the file when it is not a pickle, is truncated, holds no
    network, or references any name outside the whitelist (nothing from the file is executed)."""
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as f:
            return _load(f, os.fspath(path_or_file))
    return _load(path_or_file, str(getattr(path_or_file, "name", "<file object>")))


# What a whitelisted function raises when fed arguments no official pickle passes.
_MALFORMED = (TypeError, ValueError, AttributeError, IndexError, KeyError, OverflowError, RecursionError)


def _load(f, name):
    head = _peek(f, 4)
    if head.startswith(_ZIP_MAGIC):
        raise NetworkPickleError(f"{name}: a zip archive (a torch.save checkpoint?), expected an NVlabs network "
                                 f"pickle (a pickled dict with 'G', 'D', 'G_ema')")
    if not head.startswith(b"\x80") or len(head) < 2:
        raise NetworkPickleError(f"{name}: not a pickle (starts with {head!r}), expected an NVlabs network pickle "
                                 f"(a pickled dict with 'G', 'D', 'G_ema')")
    try:
        data = _NetworkUnpickler(f).load()
    except NetworkPickleError as e:
        raise NetworkPickleError(f"{name}: {e}") from None
    except (EOFError, pickle.UnpicklingError) as e:
        raise NetworkPickleError(f"{name}: truncated or corrupt pickle ({type(e).__name__}: {e})") from None
    except _MALFORMED as e:
        raise NetworkPickleError(f"{name}: malformed network pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not any(k in data for k in NETWORK_KEYS):
        keys = sorted(map(str, data)) if isinstance(data, dict) else None
        raise NetworkPickleError(f"{name}: holds {_brief(data)}{f' with keys {keys}' if keys else ''}; expected a "
                                 f"dict with networks {list(NETWORK_KEYS)}")
    try:
        out = {str(k): _plain(v, f"[{k!r}]") for k, v in data.items()}
    except NetworkPickleError as e:
        raise NetworkPickleError(f"{name}: {e}") from None
    except _MALFORMED as e:
        raise NetworkPickleError(f"{name}: malformed network pickle ({type(e).__name__}: {e})") from None
    for k in NETWORK_KEYS:
        # None: a network stripped from a released file (StyleGAN-XL's loader tolerates a missing D).
        if k in out and out[k] is not None and not isinstance(out[k], Network):
            raise NetworkPickleError(f"{name}: [{k!r}] is {_brief(out[k])}, expected a persistent network")
    return out


def _peek(f, n):
    if hasattr(f, "peek"):
        return f.peek(n)[:n]
    pos = f.tell()
    head = f.read(n)
    f.seek(pos)
    return head


def _plain(value, where):
    """Unpickled records -> public values: persistent objects become Networks, EasyDict/OrderedDict
    dicts, numpy scalars Python numbers."""
    if isinstance(value, (_Persistent, _TorchModule)):
        return _network(value, where)
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (_Storage, _StorageType, _TensorType)):
        raise NetworkPickleError(f"{where} is a bare {type(value).__name__.strip('_')}; expected it inside a tensor")
    return value


def _network(obj, where):
    state, class_name, module_src = obj.state, obj.class_name, getattr(obj, "module_src", "")
    if not (isinstance(state, dict) and isinstance(class_name, str) and isinstance(module_src, str)):
        raise NetworkPickleError(f"{where}: persistent object with class_name {_brief(class_name)} and state "
                                 f"{_brief(state)}: expected str and dict")
    init_args = state.get("_init_args", ())
    init_kwargs = state.get("_init_kwargs", {})
    if not isinstance(init_args, (tuple, list)) or not isinstance(init_kwargs, dict):
        raise NetworkPickleError(f"{where}: _init_args/_init_kwargs are {_brief(init_args)}/{_brief(init_kwargs)}")
    tensors, buffers, subs = {}, set(), {}
    _collect(obj, "", tensors, buffers, where)
    _collect_init_kwargs(obj, "", subs, where)
    return Network(class_name=class_name, init_args=tuple(_plain(init_args, where)),
                   init_kwargs=_plain(init_kwargs, where), state_dict=tensors, buffers=frozenset(buffers),
                   module_src=module_src, sub_init_kwargs=subs)


def _collect_init_kwargs(obj, prefix, out, where):
    """`out[dotted path] = init kwargs` for every persistent submodule below `obj`."""
    for name, child in (obj.state.get("_modules") or {}).items():
        if isinstance(child, (_Persistent, _TorchModule)) and isinstance(child.state, dict):
            kwargs = child.state.get("_init_kwargs") if isinstance(child, _Persistent) else None
            if isinstance(kwargs, dict):
                out[prefix + name] = _plain(kwargs, where)
            _collect_init_kwargs(child, f"{prefix}{name}.", out, where)


def _collect(obj, prefix, tensors, buffers, where):
    """torch's state_dict order: own parameters, own persistent buffers, then each submodule."""
    state = obj.state
    if not isinstance(state, dict):
        raise NetworkPickleError(f"{where} module {prefix or '(root)'} has state {_brief(state)}: expected a dict")
    skip = state.get("_non_persistent_buffers_set") or set()
    for kind in ("_parameters", "_buffers"):
        for name, value in (state.get(kind) or {}).items():
            if value is None or (kind == "_buffers" and name in skip):
                continue
            if not isinstance(value, np.ndarray):
                raise NetworkPickleError(f"{where} {prefix}{name} is {_brief(value)}, expected a tensor")
            tensors[prefix + name] = value
            if kind == "_buffers":
                buffers.add(prefix + name)
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, (_Persistent, _TorchModule)):
            raise NetworkPickleError(f"{where} submodule {prefix}{name} is {_brief(child)}, expected a module")
        _collect(child, f"{prefix}{name}.", tensors, buffers, where)


def _brief(value, limit=80):
    text = repr(value) if not isinstance(value, (_Persistent, _TorchModule, np.ndarray)) else \
        f"<{type(value).__name__} {getattr(value, 'class_name', getattr(value, 'shape', ''))}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --- to gigajax ----------------------------------------------------------------------------------

_POSITIONAL = {  # official constructor signatures, for networks built with positional arguments
    "Generator": ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"),
    "Discriminator": ("c_dim", "img_resolution", "img_channels"),
}


def stylegan2_kwargs(net: Network) -> dict:
    """The official constructor arguments as keywords for our `Generator.create` / `Discriminator`.

    stylegan2-ada-pytorch's Generator took `synthesis_kwargs={...}`; networks_stylegan2.py takes
    them flat, as `Generator.create` does."""
    names = _POSITIONAL[net.class_name]
    if len(net.init_args) > len(names):
        raise NetworkPickleError(f"{net.class_name} has {len(net.init_args)} positional init args: expected at "
                                 f"most {len(names)} {names}")
    kwargs = dict(zip(names, net.init_args))
    kwargs.update(net.init_kwargs)
    if net.class_name == "Generator" and isinstance(kwargs.get("synthesis_kwargs"), dict):
        kwargs.update(kwargs.pop("synthesis_kwargs"))
    return kwargs


def to_stylegan2(net: Network, what: str = "network"):
    """A StyleGAN2 `Network` -> (gigajax Generator or Discriminator, variables {'params', 'buffers'}),
    checked leaf by leaf against the model's own variable shapes."""
    if net.architecture != "stylegan2" or net.class_name not in _POSITIONAL:
        hint = " (load it with load_network)" if (net.architecture, net.class_name) in _LOADERS else ""
        raise NotImplementedError(f"{what} is a {net.class_name} of {net.architecture} architecture, not a StyleGAN2 "
                                  f"Generator / Discriminator (networks_stylegan2.py, stylegan2-ada-pytorch's "
                                  f"networks.py){hint}")
    import jax  # lazily: reading a pickle needs neither jax nor the models

    from gigajax.compat.stylegan2_convert import DEFAULT_FILTER, official_to_variables
    from gigajax.models.stylegan2 import Discriminator, Generator

    kwargs = stylegan2_kwargs(net)
    try:
        if net.class_name == "Generator":
            model = Generator.create(**kwargs)
            rf = kwargs.get("resample_filter", DEFAULT_FILTER)
            c = np.zeros([1, kwargs["c_dim"]], np.float32) if kwargs["c_dim"] else None
            args = (np.zeros([1, kwargs["z_dim"]], np.float32), c)
            call = dict(noise_mode="const")
        else:
            model = Discriminator(**kwargs)
            rf = dict(kwargs.get("block_kwargs") or {}).get("resample_filter", DEFAULT_FILTER)
            res, ch = kwargs["img_resolution"], kwargs["img_channels"]
            c = np.zeros([1, kwargs["c_dim"]], np.float32) if kwargs["c_dim"] else None
            args = (np.zeros([1, res, res, ch], np.float32), c)
            call = {}
        template = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), *args, **call))
    except (TypeError, KeyError, ValueError) as e:
        raise NetworkPickleError(f"{what}: gigajax's StyleGAN2 {net.class_name} does not take init_kwargs "
                                 f"{kwargs}: {type(e).__name__}: {e}") from None
    try:
        variables = official_to_variables(net.state_dict, resample_filter=rf, template=template)
    except ValueError as e:
        raise NetworkPickleError(f"{what}: {e}") from None
    return model, variables


def to_stylegan3(net: Network, what: str = "network"):
    """A StyleGAN3 Generator `Network` -> (gigajax stylegan3 Generator, variables), checked leaf by
    leaf against the model's variable shapes and filter by filter against its designed filters.
    (StyleGAN3 pickles hold a StyleGAN2 discriminator: `to_stylegan2` loads their 'D'.)"""
    if net.architecture != "stylegan3" or net.class_name != "Generator":
        raise NotImplementedError(f"{what} is a {net.class_name} of {net.architecture} architecture, not a "
                                  f"StyleGAN3 Generator (networks_stylegan3.py)")
    import jax

    from gigajax.compat.stylegan3_convert import design_filters, official_to_variables
    from gigajax.models.stylegan3 import Generator

    kwargs = stylegan2_kwargs(net)
    try:
        model = Generator.create(**kwargs)
        c = np.zeros([1, kwargs["c_dim"]], np.float32) if kwargs["c_dim"] else None
        template = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), np.zeros([1, kwargs["z_dim"]],
                                                                                      np.float32), c))
    except (TypeError, KeyError, ValueError) as e:
        raise NetworkPickleError(f"{what}: gigajax's StyleGAN3 Generator does not take init_kwargs {kwargs}: "
                                 f"{type(e).__name__}: {e}") from None
    try:
        variables = official_to_variables(net.state_dict, filters=design_filters(model.design()), template=template)
    except ValueError as e:
        raise NetworkPickleError(f"{what}: {e}") from None
    return model, variables


def to_stylegan_xl(net: Network, what: str = "network"):
    """A StyleGAN-XL Generator or SuperresGenerator `Network` (networks_stylegan3_resetting.py) ->
    (gigajax stylegan_xl model, variables); see `gigajax.compat.stylegan_xl_convert.to_stylegan_xl`."""
    if net.architecture != "stylegan_xl":
        raise NotImplementedError(f"{what} is a {net.class_name} of {net.architecture} architecture, not a "
                                  f"StyleGAN-XL generator (networks_stylegan3_resetting.py)")
    from gigajax.compat.stylegan_xl_convert import to_stylegan_xl as convert

    return convert(net, what)


_LOADERS = {("stylegan2", "Generator"): to_stylegan2, ("stylegan2", "Discriminator"): to_stylegan2,
            ("stylegan3", "Generator"): to_stylegan3, ("stylegan_xl", "Generator"): to_stylegan_xl,
            ("stylegan_xl", "SuperresGenerator"): to_stylegan_xl}


def _pick(path, which):
    nets = load_network_pkl(path)
    if not isinstance(nets.get(which), Network):
        have = [k for k, v in nets.items() if isinstance(v, Network)]
        raise KeyError(f"{path}: no network {which!r}; it has {have}")
    return nets[which]


def load_stylegan2(path, which: str = "G_ema"):
    """An official pickle's StyleGAN2 network `which` ('G_ema', 'G' or 'D') -> (module, variables)."""
    return to_stylegan2(_pick(path, which), f"{path} [{which!r}]")


def load_network(path, which: str = "G_ema"):
    """An official pickle's network `which` -> (gigajax module, variables), whatever its kind:
    StyleGAN2 G/D (stylegan2-ada-pytorch, stylegan3's networks_stylegan2.py), StyleGAN3 G, or
    StyleGAN-XL G (Generator or SuperresGenerator)."""
    net = _pick(path, which)
    loader = _LOADERS.get((net.architecture, net.class_name))
    if loader is None:
        raise NotImplementedError(f"{path} [{which!r}] is a {net.class_name} of {net.architecture} architecture: "
                                  f"gigajax loads {sorted(f'{a} {c}' for a, c in _LOADERS)}")
    return loader(net, f"{path} [{which!r}]")


# --- command line -----------------------------------------------------------------------------

def _flat(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, Mapping):
            yield from _flat(v, f"{prefix}{k}/")
        else:
            yield prefix + k, np.asarray(v)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gigajax.compat.stylegan2_pkl",
                                description="Show an NVlabs network pickle; optionally write one network's "
                                            "converted gigajax variables.")
    p.add_argument("path")
    p.add_argument("--which", default="G_ema", help="network to convert with --out (default G_ema)")
    p.add_argument("--out", help="write the converted variables to this .npz (keys like params/mapping/fc0/weight)")
    a = p.parse_args(argv)
    try:
        nets = load_network_pkl(a.path)
    except (OSError, NetworkPickleError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for key, value in nets.items():
        if isinstance(value, Network):
            n_buf = sum(value.state_dict[b].size for b in value.buffers)
            print(f"{key}: {value.class_name} ({value.architecture}), {value.num_params():,} parameters, "
                  f"{n_buf:,} buffer elements, {len(value.state_dict)} tensors")
            print(f"  init_kwargs: {value.init_kwargs}" + (f" init_args: {value.init_args}" if value.init_args else ""))
        else:
            print(f"{key}: {_brief(value, 200)}")
    if a.out:
        if not isinstance(nets.get(a.which), Network):
            print(f"error: {a.path} has no network {a.which!r}", file=sys.stderr)
            return 1
        try:
            net = nets[a.which]
            loader = _LOADERS.get((net.architecture, net.class_name), to_stylegan2)
            _, variables = loader(net, f"{a.path} [{a.which!r}]")
        except (NotImplementedError, NetworkPickleError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        np.savez(a.out, **dict(_flat(variables)))
        print(f"wrote {a.which} variables to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
