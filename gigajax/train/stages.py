"""Runs made of stages: progressive growing as a chain of ordinary trainer runs.

A stage is one `train()` run in its own directory, WORKDIR/<stage.name>, with its own compiled
programs, checkpoints, grids and logs. When it finishes, `export(state)` picks the variables the
next stage starts from (StyleGAN-XL: the stem's G_ema; ProGAN: G, D and G_ema at their fixed
final shapes) and they are written to WORKDIR/<name>/<export_name> with the stage's kimg; the next
stage's config names that file, and its recipe loads it in `init`.

Re-running resumes: a stage whose export records at least its kimg is skipped; an unfinished one
resumes from its own checkpoint. The stages before the first unfinished one must have their
exports (a clear error otherwise). When every stage is done, `final_metric` of the last stage's
G_ema is computed and printed.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Sequence


@dataclasses.dataclass(frozen=True)
class Stage:
    """name: the stage's directory under the workdir. label: how progress lines name it ('16x16',
    '8x8 fade-in'). config: its trainer config (total_kimg = the stage's length). init_path: the
    export it starts from ('' for the first), which must exist before it runs. meta: extra
    entries for the export's metadata."""
    name: str
    label: str
    config: Any
    init_path: str = ""
    meta: Any = None


def stage_export(workdir, stage: Stage, export_name: str) -> Path:
    return Path(workdir).absolute() / stage.name / export_name


def _done(path: Path, kimg: float) -> bool:
    from gigajax.train.export import load_variables
    return path.exists() and load_variables(path)[1].get("kimg", 0) >= float(kimg)


def run_stages(stages: Sequence[Stage], build_fn, workdir, *, export: Callable, export_name: str,
               final_metric: str = "", dataset: str = "", progress: bool = True) -> dict:
    """Train `stages` in order (module doc). export(state) -> variables dict. Returns the last
    train() result's keys ('status', 'step', 'kimg', 'workdir' of the last stage) plus the
    final metric's value under its name."""
    import jax
    from gigajax.train.export import save_variables
    from gigajax.train.loop import evaluate, train
    if not stages:
        raise ValueError("run_stages: no stages")
    workdir = Path(workdir).absolute()
    t0, result, n = time.time(), None, len(stages)
    for i, stage in enumerate(stages):
        path = stage_export(workdir, stage, export_name)
        kimg = float(stage.config.total_kimg)
        if _done(path, kimg):
            print(f"stage {i + 1}/{n} ({stage.label}): done earlier, {path}", flush=True)
            continue
        if stage.init_path and not Path(stage.init_path).exists():
            raise FileNotFoundError(f"stage {i + 1}/{n} ({stage.label}) starts from {stage.init_path}, "
                                    "which is missing")
        print(f"stage {i + 1}/{n}: {stage.label} for {kimg:g} kimg in {workdir / stage.name}", flush=True)
        result = train(stage.config, build_fn, workdir / stage.name, progress=progress)
        if result["status"] != "done":
            return result
        if jax.process_index() == 0:
            save_variables(path, export(result["state"]),
                           {**(stage.meta or {}), "stage": i, "name": stage.name, "kimg": result["kimg"]})
    last = workdir / stages[-1].name
    out = {"status": "done", "step": result["step"] if result else -1,
           "kimg": float(sum(float(s.config.total_kimg) for s in stages)), "workdir": str(last)}
    if final_metric:
        value = evaluate(last, build_fn, [final_metric], progress=progress)[final_metric]
        print(f"{final_metric} {value:.4f} (G_ema of stage {stages[-1].label} vs {dataset}; "
              f"{time.time() - t0:.0f} s in all)", flush=True)
        out[final_metric] = value
    return out


def last_stage_dir(workdir, names: Sequence[str]) -> str:
    """The newest of the named stage directories that has checkpoints (what --eval scores)."""
    done = [Path(workdir) / n for n in names if (Path(workdir) / n / "checkpoints").is_dir()]
    if not done:
        raise FileNotFoundError(f"{workdir}: none of the stage directories {list(names)} has checkpoints; train first")
    return str(done[-1])
