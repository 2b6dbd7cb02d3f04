"""Labels from a `dataset.json`, the format of the official StyleGAN `dataset_tool.py`.

    {"labels": [["00000/img00000000.png", 6], ["00000/img00000001.png", 9], ...]}

or `{"labels": null}` for an unlabelled dataset. Paths are relative to the dataset root with '/'
separators (a '\\' written on Windows is accepted). As in the official loader, integer labels
are class ids and the class count is the largest label + 1. Unlike the official loader, every
image must have exactly one entry and every entry must name an image: a partial or stale label
file is an error here rather than a KeyError or a silent mismatch.
"""

from __future__ import annotations

import json

import numpy as np

from gigajax.data.errors import DataError

LABELS_FILE = "dataset.json"


def parse_labels(text: bytes | str, image_names: list[str], where: str) -> np.ndarray | None:
    """dataset.json content + the dataset's image paths -> int64 [len(image_names)] or None.

    `where` names the file in error messages (e.g. '/data/ffhq.zip:dataset.json').
    """
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or "labels" not in meta:
        raise DataError(f"{where}: expected an object with a 'labels' key, like "
                        '{"labels": [["00000/img00000000.png", 6], ...]} or {"labels": null}')
    if meta["labels"] is None:
        return None
    mapping = _label_mapping(meta["labels"], where)
    _check_coverage(mapping, image_names, where)
    return np.array([mapping[name] for name in image_names], np.int64)


def _label_mapping(entries, where: str) -> dict[str, int]:
    """[[path, int], ...] -> {path: label}, rejecting malformed, duplicate or non-integer entries."""
    if not isinstance(entries, list):
        raise DataError(f"{where}: 'labels' must be a list of [path, label] pairs or null, got {type(entries).__name__}")
    mapping = {}
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            raise DataError(f"{where}: each label entry must be [path, label], got {entry!r}")
        name, label = entry[0].replace("\\", "/"), entry[1]
        # bool is an int in Python; a true/false label is almost certainly a mistake.
        if isinstance(label, bool) or not isinstance(label, int) or label < 0:
            raise DataError(f"{where}: label of {name!r} is {label!r}; gigajax supports non-negative integer "
                            "class labels only (vector labels are not supported)")
        if name in mapping:
            raise DataError(f"{where}: {name!r} is listed twice")
        mapping[name] = label
    return mapping


def _check_coverage(mapping: dict[str, int], image_names: list[str], where: str) -> None:
    """Exactly one label per image: name up to 3 unlabelled images and 3 entries without an image."""
    images = set(image_names)
    missing = [n for n in image_names if n not in mapping]
    extra = sorted(n for n in mapping if n not in images)
    if not missing and not extra:
        return
    parts = [f"{where}: has {len(mapping)} labels for {len(image_names)} images"]
    if missing:
        parts.append(f"{len(missing)} images have no label (e.g. {', '.join(map(repr, missing[:3]))})")
    if extra:
        parts.append(f"{len(extra)} labels name no image (e.g. {', '.join(map(repr, extra[:3]))})")
    raise DataError("; ".join(parts))
