"""The command line every experiment shares:

    python -m experiments.<name> [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]

Re-running the same command with the same --workdir resumes from its newest checkpoint.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import sys

import ml_collections


class ConfigOverrideError(ValueError):
    pass


def _flat_keys(config, prefix=""):
    for k, v in config.items():
        if isinstance(v, ml_collections.ConfigDict):
            yield from _flat_keys(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _parse_value(key: str, text: str, current):
    if isinstance(current, bool):
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigOverrideError(f"--config.{key}: expected a boolean (true/false), got {text!r}")
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigOverrideError(f"--config.{key}: expected an integer, got {text!r}") from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigOverrideError(f"--config.{key}: expected a number, got {text!r}") from None
    if isinstance(current, str):
        return text
    try:   # None, tuples, lists: a Python literal, else the plain string
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    if isinstance(current, (tuple, list)):
        # `--config.metrics=fid10k,kid10k` (or one bare name) means a sequence of strings.
        if isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        if not isinstance(value, (tuple, list)):
            raise ConfigOverrideError(f"--config.{key}: expected a comma-separated list or a tuple, got {text!r}")
        return type(current)(value)
    return value


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[tuple[str, str]]) -> ml_collections.ConfigDict:
    """Set each dotted `key` of `config` to `text`, parsed as the type of the current value."""
    known = dict(_flat_keys(config))
    for key, text in overrides:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigOverrideError(f"--config.{key}: no such config key.{hint} Run with --help to list the keys.")
        value = _parse_value(key, text, known[key])
        *parents, leaf = key.split(".")
        node = config
        for p in parents:
            node = node[p]
        node[leaf] = value
    return config


def _split_args(argv):
    """Separate --config.KEY=VALUE / --config.KEY VALUE pairs from the other arguments."""
    rest, overrides, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--config."):
            body = a[len("--config."):]
            if "=" in body:
                key, text = body.split("=", 1)
            elif i + 1 < len(argv):
                key, text = body, argv[i + 1]
                i += 1
            else:
                raise ConfigOverrideError(f"{a}: missing a value (use {a}=VALUE)")
            overrides.append((key, text))
        else:
            rest.append(a)
        i += 1
    return rest, overrides


def _help_epilog(get_config, variants) -> str:
    lines = ["variants:"]
    lines += [f"  {name:<20} {desc}" for name, desc in variants.items()]
    lines += ["", "config keys (default variant; override with --config.KEY=VALUE):"]
    lines += [f"  {k:<28} {v!r}" for k, v in _flat_keys(get_config("default"))]
    return "\n".join(lines)


def initialize_distributed() -> None:
    import jax
    kw = {}
    if "JAX_COORDINATOR_ADDRESS" in os.environ:
        kw["coordinator_address"] = os.environ["JAX_COORDINATOR_ADDRESS"]
    for env, arg in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
        if env in os.environ:
            kw[arg] = int(os.environ[env])
    jax.distributed.initialize(**kw)


def main(get_config, build, variants: dict, doc: str | None = None, argv=None, *, train_fn=None,
         eval_workdir=None) -> int:
    """Parse the command line, build the config and train. Exits 143 after a SIGTERM snapshot.

    train_fn(config, build, workdir, progress=...) -> {'status', 'step', 'kimg', ...} replaces
    `gigajax.train.loop.train` (an experiment that trains in stages drives them itself);
    eval_workdir(workdir) -> the run directory whose checkpoint --eval scores (default: workdir)."""
    argv = sys.argv[1:] if argv is None else argv
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "experiment"
    module = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = module.name.rsplit(".", 1)[-1] if module is not None else prog.removesuffix(".py")
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=doc,
                                     epilog=_help_epilog(get_config, variants),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None, help="run directory (default: runs/<experiment>-<variant>); "
                                                          "re-use it to resume")
    parser.add_argument("--variant", default="default", help=f"one of: {', '.join(variants)}")
    parser.add_argument("--no-progress", action="store_true", help="disable the progress bar")
    parser.add_argument("--eval", default=None, metavar="METRICS",
                        help="do not train: evaluate the workdir's newest checkpoint with these metrics "
                             "(comma-separated gigajax.metrics names, e.g. fid10k,kid10k) and print them")
    parser.add_argument("--distributed", action="store_true",
                        help="call jax.distributed.initialize() first (multi-process runs). It reads "
                             "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID when set, and "
                             "auto-detects on Cloud TPU and SLURM otherwise")
    try:
        rest, overrides = _split_args(argv)
        args = parser.parse_args(rest)
        if args.variant not in variants:
            raise ConfigOverrideError(f"--variant {args.variant!r}: unknown; known variants: {', '.join(variants)}")
        config = apply_overrides(get_config(args.variant), overrides)
        if "experiment" in config and not config.experiment and build.__module__.startswith("experiments."):
            config.experiment = build.__module__[len("experiments."):]
    except ConfigOverrideError as e:
        parser.error(str(e))
    workdir = args.workdir or os.path.join("runs", f"{name}-{args.variant}")

    if args.distributed:
        initialize_distributed()
    if args.eval is not None:
        from gigajax.metrics import parse_metric
        from gigajax.train.loop import evaluate
        names = [m.strip() for m in args.eval.split(",") if m.strip()]
        try:
            for m in names or [""]:
                parse_metric(m)
        except ValueError as e:
            parser.error(f"--eval: {e}")
        if not os.path.isdir(workdir):
            parser.error(f"--eval: workdir {workdir!r} does not exist (pass the --workdir of a trained run)")
        results = evaluate(eval_workdir(workdir) if eval_workdir else workdir, build, names,
                           progress=not args.no_progress)
        for k, v in results.items():
            print(f"{k} {v:.6f}", flush=True)
        return 0
    if train_fn is None:
        from gigajax.train.loop import train as train_fn
    result = train_fn(config, build, workdir, progress=not args.no_progress)
    print(f"{result['status']}: step {result['step']}, kimg {result['kimg']:.2f}, workdir {os.path.abspath(workdir)}",
          flush=True)
    if result["status"] == "interrupted":
        raise SystemExit(143)
    return 0
