"""Variables to and from a single `.npz` file: what one stage of a progressive run hands to the
next (StyleGAN-XL's stem), and what cached helper networks (the guidance classifier) are kept as.

Keys are the variable paths joined with '/', plus a JSON `meta` entry. Writes go to a temporary
file that is renamed into place, so a crash never leaves a truncated file under the final name.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np
from flax import traverse_util

_META = "__meta__"


def save_variables(path: str | os.PathLike, variables: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> Path:
    """Write `variables` (a nested dict of arrays) and a JSON-able `meta` to `path` (.npz)."""
    path = Path(path)
    flat = traverse_util.flatten_dict(jax.device_get(dict(variables)), sep="/")
    if _META in flat:
        raise ValueError(f"save_variables: a variable is named {_META!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.npz")
    np.savez(tmp, **{_META: np.asarray(json.dumps(dict(meta or {})))}, **{k: np.asarray(v) for k, v in flat.items()})
    os.replace(tmp, path)
    return path


def load_variables(path: str | os.PathLike) -> tuple[dict, dict]:
    """(variables as numpy arrays, meta) of a file written by `save_variables`."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if _META not in f.files:
                raise ValueError(f"{path}: not a gigajax variables file (no {_META!r} entry)")
            meta = json.loads(str(f[_META]))
            flat = {k: f[k] for k in f.files if k != _META}
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: unreadable variables file ({e})") from None
    return traverse_util.unflatten_dict(flat, sep="/"), meta
