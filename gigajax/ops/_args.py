"""Argument parsing and validation shared by the ops.

Every check raises ``ValueError`` naming the argument, the value it got and what was expected,
because these ops are called with shapes computed far away (layer schedules, configs) and a bare
shape error from deep inside XLA says nothing about which argument was wrong.
"""

from __future__ import annotations

import numpy as np


def fail(name, value, expected):
    raise ValueError(f"{name}={value!r}: expected {expected}")


def as_int(name, value, minimum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        fail(name, value, "an integer")
    value = int(value)
    if minimum is not None and value < minimum:
        fail(name, value, f"an integer >= {minimum}")
    return value


def parse_scaling(name, scaling):
    """`up`/`down` as an int or `[x, y]` -> (sx, sy), each >= 1."""
    if isinstance(scaling, (list, tuple)):
        if len(scaling) != 2:
            fail(name, scaling, "an int or a pair [x, y]")
        sx, sy = scaling
    else:
        sx = sy = scaling
    if isinstance(sx, (bool, np.bool_)) or not isinstance(sx, (int, np.integer)) or \
            isinstance(sy, (bool, np.bool_)) or not isinstance(sy, (int, np.integer)) or sx < 1 or sy < 1:
        fail(name, scaling, "integers >= 1 (an int or a pair [x, y])")
    return int(sx), int(sy)


def parse_padding(padding, name="padding"):
    """Official padding convention: int, `[x, y]` or `[x0, x1, y0, y1]` -> (px0, px1, py0, py1)."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = [int(padding)] * 4
    elif isinstance(padding, (list, tuple)) and len(padding) == 2:
        p = [padding[0], padding[0], padding[1], padding[1]]
    elif isinstance(padding, (list, tuple)) and len(padding) == 4:
        p = list(padding)
    else:
        fail(name, padding, "an int, a pair [x, y] or a quadruple [x0, x1, y0, y1]")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in p):
        fail(name, padding, "integers")
    return tuple(int(v) for v in p)


def check_rank(name, x, ranks, layout=None):
    ndim = np.ndim(x)
    if ndim not in ranks:
        what = f"rank {' or '.join(map(str, ranks))}" + (f" ({layout})" if layout else "")
        fail(name + ".shape", tuple(np.shape(x)), what)


def filter_size(f, name="f"):
    """(fw, fh) of a filter given as None, [taps] (separable) or [fh, fw]."""
    if f is None:
        return 1, 1
    check_rank(name, f, (1, 2), "[taps] or [filter_height, filter_width]")
    shape = np.shape(f)
    if min(shape) < 1:
        fail(name + ".shape", tuple(shape), "a non-empty filter")
    return shape[-1], shape[0]
