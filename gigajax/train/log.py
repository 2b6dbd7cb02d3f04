"""Training logs: metrics averaged over each log window, written to JSONL and TensorBoard."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from gigajax.train.tfevents import EventWriter


def summarize(window: list[dict]) -> dict[str, float]:
    """Average per-step metric dicts over a window. A phase's metrics average only over the
    steps where that phase ran ('<phase>/ran' == 1); skips and bookkeeping keys are summed or
    taken from the last step."""
    if not window:
        return {}
    arrays = {k: np.asarray([m[k] for m in window], np.float64) for k in window[0]}
    out = {}
    for k, v in arrays.items():
        phase, _, name = k.rpartition("/")
        if name == "ran":
            continue
        if name == "skipped":
            out[k] = float(v.sum())
        elif k.startswith("nonfinite/"):
            out[k] = float(v[-1])
        elif phase and f"{phase}/ran" in arrays:
            ran = arrays[f"{phase}/ran"] > 0
            if ran.any():
                out[k] = float(v[ran].mean())
        else:
            out[k] = float(v.mean())
    return out


class MetricsLog:
    """WORKDIR/metrics.jsonl (one JSON object per log line, appended across resumes) and
    TensorBoard scalars under WORKDIR/tb."""

    def __init__(self, workdir, enabled: bool = True):
        self.enabled = enabled
        if enabled:
            self._jsonl = open(Path(workdir) / "metrics.jsonl", "a")
            self._tb = EventWriter(os.path.join(workdir, "tb"))

    def write(self, step: int, record: dict) -> None:
        if not self.enabled:
            return
        clean = {k: (v if not (isinstance(v, float) and not math.isfinite(v)) else str(v)) for k, v in record.items()}
        self._jsonl.write(json.dumps({"step": step, **clean}) + "\n")
        self._jsonl.flush()
        self._tb.scalars(step, {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"})

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            self._tb.close()
