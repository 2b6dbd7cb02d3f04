"""Progressive growing (ProGAN, StyleGAN v1) as a chain of trainer runs, one per phase of the
official schedule.

The schedule: `lod_training_kimg` at `lod_initial_resolution`, then for each doubling a fade-in
of `lod_transition_kimg` and a stable phase of `lod_training_kimg`; the final resolution then
trains until `total_kimg` (the official TrainingSchedule's lod formula, laid out as phases).

Each phase is a stage (gigajax.train.stages) in WORKDIR/<res>_<fade|stable>: its own compiled
programs (the phase's level and whether it fades are static), fresh optimizer state (the
official reset_opt_for_new_lod resets Adam at the start of every fade-in and stable phase), and
it starts from the previous phase's G, D and G_ema at their fixed final shapes (handover.npz).
The recipe gets `model.level`, `model.fading`, `model.fade_kimg` and `model.init_path`.

Config keys (besides the trainer's): lod_initial_resolution, lod_training_kimg,
lod_transition_kimg, minibatch and lrate ((resolution, value), ... overrides of batch_size and
model.lr, as the official minibatch_dict and G/D_lrate_dict), final_metric.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

SCHEDULE_KEYS = ("lod_initial_resolution", "lod_training_kimg", "lod_transition_kimg", "minibatch", "lrate",
                 "final_metric")
EXPORT = "handover.npz"


def schedule(config, resolution: int) -> list[tuple[int, bool, float]]:
    """The phases [(level, fading, kimg), ...] that grow to `resolution` (the dataset's) and train
    until config.total_kimg. Level l runs at 4 * 2**l."""
    r0 = int(config.lod_initial_resolution)
    if r0 < 4 or r0 & (r0 - 1) or r0 > resolution:
        raise ValueError(f"lod_initial_resolution must be a power of 2 in [4, {resolution}], got {r0}")
    train_k, fade_k = float(config.lod_training_kimg), float(config.lod_transition_kimg)
    if train_k <= 0 or fade_k <= 0:
        raise ValueError(f"lod_training_kimg and lod_transition_kimg must be > 0, got {train_k}, {fade_k}")
    first, last = int(math.log2(r0)) - 2, int(math.log2(resolution)) - 2
    phases = [(first, False, train_k)]
    for level in range(first + 1, last + 1):
        phases += [(level, True, fade_k), (level, False, train_k)]
    grown = sum(k for _, _, k in phases[:-1])
    final = float(config.total_kimg) - grown
    if final <= 0:
        raise ValueError(f"total_kimg={config.total_kimg} ends before the networks reach {resolution}x{resolution} "
                         f"(growing takes {grown + train_k:g} kimg with these phases)")
    phases[-1] = (last, False, final)
    return phases


def per_resolution(pairs, res: int, default, what: str):
    """The value for `res` in ((resolution, value), ...), else `default`."""
    table = {}
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"config.{what} must hold (resolution, value) pairs, got {pair!r}")
        table[int(pair[0])] = pair[1]
    return table.get(res, default)


def phase_name(level: int, fading: bool) -> tuple[str, str]:
    """(directory name, progress label) of a phase."""
    res = 4 * 2 ** level
    return f"{res}_{'fade' if fading else 'stable'}", f"{res}x{res} {'fade-in' if fading else 'stable'}"


def ema_per_step(beta: float):
    """ProGAN's G_ema: beta per step, no ramp-up, as (ema_kimg, ema_rampup) for a batch size."""
    def rule(batch_size):
        return (batch_size * math.log(0.5) / math.log(beta) / 1000, 0.0) if beta > 0 else (0.0, 0.0)
    return rule


def ema_half_life(kimg: float):
    """StyleGAN's G_ema: a half-life of `kimg` thousand images, no ramp-up."""
    return lambda batch_size: (float(kimg), 0.0)


def stages(config, workdir, resolution: int, ema) -> list:
    """config's phases as `gigajax.train.stages.Stage`s, each starting from the previous export.
    ema(batch_size) -> (ema_kimg, ema_rampup) of the phase's trainer config."""
    from gigajax.train.stages import Stage
    out, prev = [], ""
    for level, fading, kimg in schedule(config, resolution):
        name, label = phase_name(level, fading)
        res = 4 * 2 ** level
        c = copy.deepcopy(config)
        with c.unlocked():
            for k in SCHEDULE_KEYS:
                del c[k]
        c.total_kimg = float(kimg)
        c.batch_size = int(per_resolution(config.minibatch, res, config.batch_size, "minibatch"))
        c.model.lr = float(per_resolution(config.lrate, res, config.model.lr, "lrate"))
        c.model.level, c.model.fading, c.model.fade_kimg = level, fading, float(config.lod_transition_kimg)
        c.model.init_path = prev
        c.ema_kimg, c.ema_rampup = ema(c.batch_size)
        out.append(Stage(name, label, c, init_path=prev, meta={"resolution": res, "fading": fading}))
        prev = str(Path(workdir).absolute() / name / EXPORT)
    return out


def export(state) -> dict:
    """What a phase hands to the next: G, D and G_ema, parameters and buffers."""
    return {"G": {"params": state.params["G"], **state.colls["G"]}, "D": {"params": state.params["D"], **state.colls["D"]},
            "G_ema": state.ema}


def dataset_resolution(config) -> int:
    from gigajax.data import open_source
    return int(config.resolution) or int(open_source(config.dataset, resolution=None, use_labels=False).resolution)


def run(config, build_fn, workdir, *, ema, progress: bool = True) -> dict:
    """Train every phase in order (resuming), then print config.final_metric of the last one."""
    from gigajax.train.stages import run_stages
    return run_stages(stages(config, workdir, dataset_resolution(config), ema), build_fn, workdir, export=export,
                      export_name=EXPORT, final_metric=config.final_metric, dataset=config.dataset,
                      progress=progress)


def last_phase_dir(workdir) -> str:
    """The newest phase directory with checkpoints (what --eval scores)."""
    from gigajax.train.stages import last_stage_dir
    names = [phase_name(level, fading)[0] for level in range(12) for fading in (True, False)]
    return last_stage_dir(workdir, names)
