"""The referee: run gigajax on golden cases made with the official implementations.

    python -m gigajax.compat.verify PATH... [--kinds GLOB] [--skip-unsupported]

PATH is a golden `.npz` or a folder of them. For each case: build our op or model from `meta`,
convert `state/*` through `gigajax.compat`, run on `input/*` and compare each `output/*` by rel-L2
(float64) against `meta.tolerance`. One row per case, then a summary. Exit status 0 only when
every selected case passes; `unsupported` kinds fail the run unless --skip-unsupported.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import sys
import time
from pathlib import Path

from gigajax.compat import golden
from gigajax.compat.kinds import runners


@dataclasses.dataclass
class Result:
    path: Path
    kind: str
    status: str          # pass | FAIL | unsupported | ERROR
    worst: float | None  # worst rel-L2 over the outputs
    tolerance: float | None
    detail: str = ""
    seconds: float = 0.0


def collect(paths):
    """Expand files and folders into a sorted list of .npz paths; a missing path is an error."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.npz")))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"golden path {str(p)!r} does not exist")
    return files


def run_case(path, kinds=None) -> Result | None:
    t0 = time.perf_counter()
    try:
        case = golden.load(path)
    except golden.GoldenFormatError as e:
        return Result(path, "?", "ERROR", None, None, str(e))
    if kinds and not any(fnmatch.fnmatchcase(case.kind, k) for k in kinds):
        return None
    runner = runners().get(case.kind)
    if runner is None:
        return Result(path, case.kind, "unsupported", None, case.tolerance, "no gigajax implementation of this kind yet")
    try:
        got = runner(case)
    except Exception as e:  # a crash is a failure of this case, not of the whole run
        return Result(path, case.kind, "ERROR", None, case.tolerance, f"{type(e).__name__}: {e}",
                      time.perf_counter() - t0)
    worst, details = 0.0, []
    for name, ref in case.outputs.items():
        if name not in got:
            return Result(path, case.kind, "ERROR", None, case.tolerance, f"runner produced no output {name!r}")
        err = golden.rel_l2(got[name], ref)
        if err == float("inf") and getattr(got[name], "shape", None) != ref.shape:
            details.append(f"{name}: shape {tuple(got[name].shape)} != reference {tuple(ref.shape)}")
        worst = max(worst, err)
    status = "pass" if worst <= case.tolerance else "FAIL"
    return Result(path, case.kind, status, worst, case.tolerance, "; ".join(details), time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m gigajax.compat.verify", description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", metavar="PATH", help="golden .npz files or folders of them")
    ap.add_argument("--kinds", action="append", default=None, metavar="GLOB",
                    help="only cases whose meta.kind matches this glob (repeatable), e.g. 'ops.*'")
    ap.add_argument("--skip-unsupported", action="store_true",
                    help="do not fail the run for kinds gigajax does not implement yet")
    args = ap.parse_args(argv)
    try:
        files = collect(args.paths)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not files:
        print(f"error: no .npz golden cases under {args.paths}", file=sys.stderr)
        return 2

    results = []
    width = max(len(f.name) for f in files)
    print(f"{'file':<{width}}  {'kind':<42} {'rel-L2':>10} {'tol':>8}  status")
    for f in files:
        r = run_case(f, args.kinds)
        if r is None:
            continue
        results.append(r)
        err = "-" if r.worst is None else f"{r.worst:.3e}"
        tol = "-" if r.tolerance is None else f"{r.tolerance:.0e}"
        line = f"{f.name:<{width}}  {r.kind:<42} {err:>10} {tol:>8}  {r.status}"
        if r.detail:
            line += f"  ({r.detail})"
        print(line, flush=True)

    count = {s: sum(r.status == s for r in results) for s in ("pass", "FAIL", "unsupported", "ERROR")}
    failed = count["FAIL"] + count["ERROR"] + (0 if args.skip_unsupported else count["unsupported"])
    print(f"{len(results)} cases: {count['pass']} passed, {count['FAIL']} failed, {count['ERROR']} errors, "
          f"{count['unsupported']} unsupported" + (" (skipped)" if args.skip_unsupported and count["unsupported"] else ""))
    if not results:
        print("error: no case matched --kinds", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
