"""Reader for the golden test vectors (format: ../shared/golden/README.md).

One case per `.npz`: a JSON `meta`, the reference module's `state/<key>` entries, `input/<name>`
call inputs in `meta.inputs` order and `output/<name>` reference outputs.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

REQUIRED_META = ("kind", "init_kwargs", "call_kwargs", "inputs", "outputs", "tolerance")


class GoldenFormatError(ValueError):
    """The file is not a readable golden case."""


@dataclasses.dataclass
class GoldenCase:
    path: Path
    meta: dict
    state: dict
    inputs: dict
    outputs: dict

    @property
    def kind(self):
        return self.meta["kind"]

    @property
    def tolerance(self):
        return float(self.meta["tolerance"]["rel_l2"])


def load(path) -> GoldenCase:
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
        files = list(data.files)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise GoldenFormatError(f"{path}: not a readable .npz golden case ({e})") from None
    if "meta" not in files:
        raise GoldenFormatError(f"{path}: no 'meta' entry, so this is not a golden case")
    try:
        meta = json.loads(str(data["meta"]))
    except json.JSONDecodeError as e:
        raise GoldenFormatError(f"{path}: 'meta' is not valid JSON ({e})") from None
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise GoldenFormatError(f"{path}: meta lacks {missing}")
    state = {k[len("state/"):]: data[k] for k in files if k.startswith("state/")}
    try:
        inputs = {n: data["input/" + n] for n in meta["inputs"]}
        outputs = {n: data["output/" + n] for n in meta["outputs"]}
    except KeyError as e:
        raise GoldenFormatError(f"{path}: meta names an array that is missing: {e}") from None
    return GoldenCase(path=path, meta=meta, state=state, inputs=inputs, outputs=outputs)


def rel_l2(got, ref):
    """norm(got - ref) / norm(ref) over all elements, in float64 (inf on a shape mismatch)."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf")
    denom = np.linalg.norm(ref.ravel())
    num = np.linalg.norm((got - ref).ravel())
    if denom == 0:
        return 0.0 if num == 0 else float("inf")
    return float(num / denom)
