"""Registry of golden-case kinds: `meta.kind` -> a runner that reproduces the case with gigajax.

A runner takes a `GoldenCase` and returns `{output name: array}` in the reference's layout.
Model families register their kinds in their own modules (listed in `KIND_MODULES`).
"""

from __future__ import annotations

import importlib

RUNNERS = {}

KIND_MODULES = ["gigajax.compat.ops_kinds", "gigajax.compat.metrics_kinds", "gigajax.compat.stylegan2_kinds",
                "gigajax.compat.stylegan3_kinds", "gigajax.compat.stylegan_xl_kinds"]


def register(kind):
    def deco(fn):
        if kind in RUNNERS:
            raise ValueError(f"golden kind {kind!r} registered twice")
        RUNNERS[kind] = fn
        return fn
    return deco


def runners():
    for name in KIND_MODULES:
        importlib.import_module(name)
    return RUNNERS
