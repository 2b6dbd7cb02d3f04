"""The training loop: build, resume, step, log, snapshot, stop.

    train(config, build, workdir)

`build(config, spec) -> GANRecipe` comes from the experiment. Everything else is generic: the
mesh, the sharded jit step, EMA, orbax checkpoints with automatic resume, the non-finite
guard, SIGTERM handling, JSONL/TensorBoard logs, the progress bar and sample grids.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from gigajax.train.checkpoint import Checkpoints
from gigajax.train.grid import save_grid
from gigajax.train.log import MetricsLog, summarize
from gigajax.train.recipe import DataSpec
from gigajax.train.state import create_state
from gigajax.train.step import jit_train_step

# Config keys that may change between a run and its resume without breaking exactness.
RESUMABLE_CHANGES = {"total_kimg", "snapshot_kimg", "log_every", "keep_checkpoints", "prefetch", "metrics",
                     "max_nonfinite", "grid_rows", "grid_cols", "experiment"}


class NonFiniteError(RuntimeError):
    pass


class ResumeMismatchError(ValueError):
    pass


def make_mesh() -> jax.sharding.Mesh:
    """A 1-D data-parallel mesh over every device of every process."""
    return jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))


def _check_config(config) -> None:
    for key in ("total_kimg", "batch_size", "seed", "snapshot_kimg", "dataset"):
        if key not in config:
            raise ValueError(f"config is missing the required key {key!r}")
    if config.batch_size <= 0:
        raise ValueError(f"config.batch_size must be positive, got {config.batch_size}")
    if config.batch_size % jax.device_count():
        raise ValueError(f"config.batch_size={config.batch_size} must be divisible by the number of devices "
                         f"({jax.device_count()}) so that each gets an equal share of the global batch")
    if config.total_kimg <= 0 or config.snapshot_kimg <= 0:
        raise ValueError(f"config.total_kimg ({config.total_kimg}) and config.snapshot_kimg "
                         f"({config.snapshot_kimg}) must be positive")
    if tuple(config.get("metrics", ())):
        from gigajax.metrics import parse_metric   # a typo fails now, not after the first snapshot
        if isinstance(config.metrics, str):
            raise ValueError(f"config.metrics must be a tuple of names, got the string {config.metrics!r}")
        for name in config.metrics:
            try:
                parse_metric(name)
            except ValueError as e:
                raise ValueError(f"config.metrics: {e}") from None


def _check_resume(saved: dict, config) -> None:
    now = json.loads(config.to_json())
    diffs = sorted(k for k in set(saved) | set(now) if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
    if diffs:
        detail = "; ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {now.get(k)!r}" for k in diffs)
        raise ResumeMismatchError(f"the workdir's checkpoint was written with a different config ({detail}). "
                                  f"Resuming would not continue the same run: use a new --workdir, or pass the "
                                  f"original values.")


def _open_data(config):
    from gigajax.data import Pipeline, open_source
    source = open_source(config.dataset, resolution=int(config.resolution) or None, use_labels=bool(config.use_labels))
    return Pipeline(source, int(config.batch_size), int(config.seed), xflip=bool(config.xflip))


class _Run:
    """What training and evaluation both build from a config: the data pipeline, the recipe and
    its optimizers, the mesh shardings, and the state initialiser (also the abstract state a
    checkpoint is restored into)."""

    def __init__(self, config, build):
        self.pipe = _open_data(config)
        self.recipe = build(config, DataSpec(self.pipe.resolution, self.pipe.channels, self.pipe.c_dim))
        self.optimizers = self.recipe.optimizers()
        mesh = make_mesh()
        self.repl, self.data_sh = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
        self.key = jax.random.key(int(config.seed))
        self.sample = _global_batch(self.pipe.local_batch(0), self.data_sh)
        recipe, optimizers = self.recipe, self.optimizers
        self.init_fn = jax.jit(lambda key, batch: create_state(recipe, key, batch, optimizers),
                               out_shardings=self.repl)

    def init_state(self):
        return self.init_fn(self.key, self.sample)

    def restore(self, ckpt, step):
        abstract = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.repl),
                                          jax.eval_shape(self.init_fn, self.key, self.sample))
        return ckpt.restore(abstract, step)


def train(config, build, workdir, *, progress: bool = True) -> dict:
    """Train (or resume) the run in `workdir` until config.total_kimg. Returns {'step', 'kimg',
    'status', 'state'}; status is 'done' or 'interrupted' (SIGTERM), and state is the final
    TrainState (G_ema's variables are state.ema), for callers that train from Python."""
    _check_config(config)
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    is_main = jax.process_index() == 0

    run = _Run(config, build)
    pipe, recipe, repl, data_sh, key = run.pipe, run.recipe, run.repl, run.data_sh, run.key
    B = int(config.batch_size)
    step_fn = jit_train_step(recipe, run.optimizers, batch_size=B, ema_kimg=float(config.ema_kimg),
                             ema_rampup=float(config.ema_rampup), state_sharding=repl, batch_sharding=data_sh)

    ckpt = Checkpoints(workdir, keep=int(config.keep_checkpoints))
    resumed_from = ckpt.latest_step()
    if resumed_from is None:
        state = run.init_state()
        meta = {"config": json.loads(config.to_json())}
        if is_main:
            (workdir / "config.json").write_text(config.to_json(indent=2))
    else:
        # Compare configs first: a changed model setting is named here instead of surfacing as
        # an array-shape mismatch inside orbax.
        _check_resume(ckpt.read_meta(resumed_from).get("config", {}), config)
        state, meta = run.restore(ckpt, resumed_from)
    del run.sample

    log = MetricsLog(workdir, enabled=is_main)
    class_probs = _class_probs(pipe.source) if tuple(config.metrics) else None
    grid_rows, grid_cols = int(config.grid_rows), int(config.grid_cols)
    grid_z, grid_c = recipe.grid_inputs(jax.random.fold_in(key, 0x6772), grid_rows, grid_cols)
    gen_fn = jax.jit(recipe.generate, out_shardings=repl)
    grid_key = jax.random.fold_in(key, 0x6E6F)

    def snapshot(state, wait=False, metrics=True):
        step = ckpt.save(state, {**meta, "kimg": int(state.nimg) / 1000.0}, wait=wait)
        images = gen_fn(state.ema, grid_z, grid_c, grid_key)
        if is_main:
            save_grid(jax.device_get(images), grid_rows, grid_cols, workdir / f"fakes{int(state.nimg) // 1000:06d}.png")
        if metrics and tuple(config.metrics):
            evaluate_state(config, recipe, state, workdir, log, class_probs=class_probs, progress=progress)
        return step

    if is_main and resumed_from is None:
        need, reals = grid_rows * grid_cols, []
        for s in range(pipe.steps_per_epoch):
            reals.append(pipe.local_batch(s)["image"])
            if sum(map(len, reals)) >= need:
                break
        reals = np.concatenate(reals)[:need]
        if len(reals) == need:
            save_grid(reals.astype(np.float32) / 127.5 - 1.0, grid_rows, grid_cols, workdir / "reals.png")

    step = int(state.step)
    nimg = int(state.nimg)
    total_nimg = int(round(float(config.total_kimg) * 1000))
    snap_nimg = float(config.snapshot_kimg) * 1000
    next_snap = (math.floor(nimg / snap_nimg) + 1) * snap_nimg
    if resumed_from is None:
        snapshot(state, metrics=False)   # the initial snapshot: a resume target and the untrained grid
    elif is_main:
        print(f"Resuming from {ckpt.dir / str(resumed_from)} (step {step}, kimg {nimg / 1000:.1f})", flush=True)

    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()   # signal handlers live there
    if in_main_thread:
        previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    bar = _progress(progress and is_main, total_nimg, nimg)
    window, previous_metrics, last_log_t, last_log_nimg = [], None, time.time(), nimg
    status = "done"
    data = pipe.iterate(step, data_sh, prefetch=int(config.prefetch))
    try:
        while nimg < total_nimg:
            batch = next(data)
            state, metrics = step_fn(state, batch, step)
            step, nimg = step + 1, nimg + B
            window.append(metrics)
            bar.update(min(B, max(total_nimg - (nimg - B), 0)) / 1000)
            # The guard reads the previous step's counters, so the host never waits on the step it just queued.
            if previous_metrics is not None and int(previous_metrics["nonfinite/streak"]) >= int(config.max_nonfinite):
                snapshot(state, wait=True)
                raise NonFiniteError(
                    f"{int(previous_metrics['nonfinite/streak'])} consecutive steps had a non-finite loss or gradient "
                    f"(config.max_nonfinite={config.max_nonfinite}); stopped at step {step}, kimg {nimg / 1000:.2f}. "
                    f"Those updates were skipped, so the checkpoint just written in {ckpt.dir} holds the last good "
                    f"state. Lower the learning rate or check the data.")
            previous_metrics = metrics
            done = nimg >= total_nimg
            if step % int(config.log_every) == 0 or done:
                record = _log_record(window, nimg, last_log_t, last_log_nimg)
                window, last_log_t, last_log_nimg = [], time.time(), nimg
                log.write(step, record)
                bar.set_postfix_str(_postfix(record), refresh=False)
            # Processes must agree to stop at the same step (the snapshot and every later step are
            # collective), so multi-process runs act on SIGTERM only at log boundaries, together.
            if jax.process_count() == 1:
                interrupted = stop.is_set()
            else:
                interrupted = step % int(config.log_every) == 0 and _any_process(stop.is_set())
            if nimg >= next_snap or done or interrupted:
                snapshot(state, wait=done or interrupted, metrics=not interrupted)
                next_snap = (math.floor(nimg / snap_nimg) + 1) * snap_nimg
            if interrupted:
                status = "interrupted"
                break
    finally:
        data.close()
        bar.close()
        ckpt.close()
        log.close()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
    if is_main and status == "interrupted":
        print(f"SIGTERM: checkpoint written at step {step} (kimg {nimg / 1000:.2f}); re-run the same command to resume.",
              flush=True)
    return {"step": step, "kimg": nimg / 1000.0, "status": status, "state": state}


def _restore_run(ckpt, build, step: int | None, what: str):
    """(config, _Run, state) of checkpoint `step` (None = newest) in `ckpt`, the model rebuilt
    from the config saved with it. `what` names the caller in the error for an empty workdir."""
    import ml_collections
    step = ckpt.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"{what}: no checkpoint in {ckpt.dir}; train first")
    config = ml_collections.ConfigDict(ckpt.read_meta(step)["config"])
    run = _Run(config, build)
    state, _ = run.restore(ckpt, step)
    del run.sample
    return config, run, state


def load_run(workdir, build, *, step: int | None = None) -> tuple:
    """(config, recipe, state) of the workdir's newest checkpoint (or `step`), for tools that use
    a trained model outside the trainer (G_ema's variables are state.ema, its module recipe.G).

    The recipe is rebuilt by `build` from the config saved with the checkpoint; the dataset is
    opened once to size it (resolution, channels, classes), as training did."""
    ckpt = Checkpoints(Path(workdir).absolute(), keep=1 << 30)
    try:
        config, run, state = _restore_run(ckpt, build, step, "load_run")
        return config, run.recipe, state
    finally:
        ckpt.close()


def evaluate(workdir, build, metrics, *, step: int | None = None, progress: bool = True) -> dict:
    """`--eval`: compute `metrics` for G_ema of the workdir's newest checkpoint (or `step`).

    The model is rebuilt from the config saved with the checkpoint, so the command line needs
    no variant or overrides; results are logged and plotted like the trainer's own."""
    workdir = Path(workdir).absolute()
    ckpt = Checkpoints(workdir, keep=1 << 30)
    try:
        config, run, state = _restore_run(ckpt, build, step, "--eval")
        config.metrics = tuple(metrics)
        log = MetricsLog(workdir, enabled=jax.process_index() == 0)
        try:
            return evaluate_state(config, run.recipe, state, workdir, log,
                                  class_probs=_class_probs(run.pipe.source), progress=progress)
        finally:
            log.close()
    finally:
        ckpt.close()


def _class_probs(source):
    """The dataset's label distribution [num_classes] (None when unlabelled): generated samples
    for the metrics get labels drawn from it, as NVlabs draws them from the dataset."""
    if not source.num_classes:
        return None
    counts = np.bincount(source.labels(np.arange(len(source))), minlength=source.num_classes)
    return counts / counts.sum()


def evaluate_state(config, recipe, state, workdir, log, *, class_probs=None, progress: bool = False) -> dict:
    """Compute config.metrics for G_ema of `state` against config.dataset; log them as
    'metric/<name>' (JSONL + TensorBoard), redraw WORKDIR/metrics.png and print one line."""
    from gigajax.metrics import GeneratorSpec, compute_metrics
    from gigajax.train.plot import plot_metrics
    t0 = time.time()
    spec = GeneratorSpec(recipe.generate, state.ema, recipe.z_dim, recipe.c_dim, class_probs=class_probs,
                         sample_z=recipe.sample_z, mapping=recipe.mapping, synthesis=recipe.synthesis,
                         synthesis_t=getattr(recipe, "synthesis_t", None))
    results = compute_metrics(tuple(config.metrics), spec,
                              dataset=config.dataset, resolution=int(config.resolution) or None,
                              seed=int(config.seed), progress=progress)
    kimg = int(state.nimg) / 1000.0
    log.write(int(state.step), {"kimg": kimg, **{f"metric/{k}": v for k, v in results.items()}})
    if jax.process_index() == 0:
        plot_metrics(Path(workdir) / "metrics.jsonl", Path(workdir) / "metrics.png")
        text = "  ".join(f"{k} {v:.4f}" for k, v in results.items())
        print(f"\nkimg {kimg:.1f}: {text}  ({time.time() - t0:.0f} s)", flush=True)
    return results


def _global_batch(local: dict, sharding) -> dict:
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}


def _any_process(flag: bool) -> bool:
    from jax.experimental import multihost_utils
    return bool(np.any(multihost_utils.process_allgather(np.asarray([flag], np.int32))))


def _log_record(window, nimg, t0, nimg0) -> dict:
    host = [jax.device_get(m) for m in window]
    record = summarize(host)
    dt = max(time.time() - t0, 1e-9)
    record.update({"kimg": nimg / 1000.0, "images_per_sec": (nimg - nimg0) / dt, "time": time.time()})
    return record


def _postfix(record: dict) -> str:
    parts = [f"{record['images_per_sec']:.0f} img/s"]
    parts += [f"{k.replace('/loss', '')}={v:.3g}" for k, v in record.items() if k.endswith("/loss")]
    return " ".join(parts)


def _progress(enabled: bool, total_nimg: int, nimg: int):
    from tqdm.auto import tqdm
    return tqdm(total=total_nimg / 1000, initial=nimg / 1000, unit="kimg", disable=not enabled, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} kimg [{elapsed}<{remaining}{postfix}]")
