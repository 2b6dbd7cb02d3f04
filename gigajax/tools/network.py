"""Where a generator comes from: a gigajax training run or an NVlabs network pickle.

    G, variables, info = load_generator("runs/stylegan2-default")     # newest checkpoint's G_ema
    G, variables, info = load_generator("ffhq.pkl")                   # NVlabs stylegan2(-ada) pickle
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

DEFAULT_EXPERIMENT = "stylegan2"


class NetworkError(ValueError):
    """A network path that exists but cannot be loaded as a generator (with the reason)."""


def load_generator(path, *, experiment: str | None = None, step: int | None = None, which: str = "G_ema"):
    """-> (G module, G variables {'params', 'buffers', ...}, info dict).

    path: a training run directory (the --workdir of `python -m experiments.<name>`): G is the
      recipe's `G`, rebuilt from the config saved with the newest checkpoint (or `step`), with the
      EMA parameters and G's other collections (`state.ema`); info has source='run', workdir,
      experiment, step, kimg, config. `experiment` names the module experiments.<name> whose
      `build` made the run: the run's saved config decides when it records one ('experiment'),
      else it defaults to 'stylegan2'.
    Or an NVlabs `.pkl` (stylegan2-ada-pytorch / stylegan3 StyleGAN2 networks): `which` picks the
      network ('G_ema' as the official tools do); info has source='pkl', path, which.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"network {str(path)!r} does not exist: expected a gigajax training run directory "
                                f"(a --workdir with checkpoints/) or an NVlabs .pkl file")
    if p.is_dir():
        return _load_run_dir(p, experiment, step)
    if p.suffix.lower() == ".pkl":
        if experiment is not None or step is not None:
            raise NetworkError("experiment and step apply to training run directories, not to .pkl files")
        return _load_pkl(p, which)
    raise NetworkError(f"network {str(path)!r} is neither a directory (a gigajax training run) nor a .pkl file")


def _load_pkl(path: Path, which: str):
    try:   # lazily: the converter pulls in its own dependencies, and runs do not need it
        from gigajax.compat.stylegan2_pkl import load_network
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("gigajax.compat"):
            raise NetworkError(f"loading {path}: NVlabs pickles need gigajax.compat.stylegan2_pkl, which this "
                               f"installation does not have") from e
        raise
    try:
        G, variables = load_network(str(path), which=which)
    except KeyError as e:      # no network `which` in the pickle
        raise NetworkError(str(e.args[0]) if e.args else f"{path}: no network {which!r}") from e
    return G, variables, {"source": "pkl", "path": str(path.absolute()), "which": which}


def run_experiment(workdir: Path, experiment: str | None) -> str:
    """The experiment that made the run: the argument, else the saved config's 'experiment' key,
    else DEFAULT_EXPERIMENT."""
    if experiment:
        return experiment
    saved = Path(workdir) / "config.json"
    if saved.is_file():
        name = json.loads(saved.read_text()).get("experiment")
        if name:
            return str(name)
    return DEFAULT_EXPERIMENT


def _load_run_dir(workdir: Path, experiment: str | None, step: int | None):
    from gigajax.train.checkpoint import CheckpointError
    from gigajax.train.loop import load_run
    if not (workdir / "checkpoints").is_dir():
        raise FileNotFoundError(f"{workdir} is not a gigajax training run: it has no checkpoints/ directory "
                                f"(pass the --workdir of `python -m experiments.<name>`, or a .pkl file)")
    name = run_experiment(workdir, experiment)
    try:
        module = importlib.import_module(f"experiments.{name}")
    except ModuleNotFoundError as e:
        if e.name == "experiments":
            raise NetworkError("the experiments package is not importable: run from the gigajax repository root "
                               "(where experiments/ lives) or put it on PYTHONPATH") from e
        raise NetworkError(f"experiment {name!r}: no module experiments.{name} (pass experiment=/--experiment "
                           f"with the name of the experiment that trained {workdir})") from e
    try:
        config, recipe, state = load_run(workdir, module.build, step=step)
    except (TypeError, KeyError, CheckpointError) as e:
        # What a run of another experiment looks like: its model config does not fit this build,
        # or its checkpoint does not fit this model.
        raise NetworkError(f"experiments.{name} cannot rebuild the run in {workdir} (did another experiment train "
                           f"it? pass experiment=/--experiment): {type(e).__name__}: {e}") from e
    G = getattr(recipe, "G", None)
    if G is None or not all(hasattr(G, m) for m in ("map", "synthesize", "num_ws")):
        raise NetworkError(f"experiment {name!r}: its recipe ({type(recipe).__name__}) has no StyleGAN-style "
                           f"generator `G` with map/synthesize; these tools need one")
    info = {"source": "run", "workdir": str(workdir.absolute()), "experiment": name, "step": int(state.step),
            "kimg": int(state.nimg) / 1000.0, "config": config}
    return G, state.ema, info
