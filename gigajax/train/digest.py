"""Print a checkpoint's step, kimg and a sha256 over every array in it.

    python -m gigajax.train.digest WORKDIR [--step N]

Two runs that end in the same digest hold bitwise-identical parameters, optimizer states,
EMA, counters and RNG.
"""

import argparse
import sys

from gigajax.train.checkpoint import CheckpointError, digest, read_raw


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gigajax.train.digest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir")
    parser.add_argument("--step", type=int, default=None, help="a specific checkpoint (default: the newest)")
    args = parser.parse_args(argv)
    try:
        step, state, meta = read_raw(args.workdir, args.step)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"step {step}")
    print(f"kimg {float(state['nimg']) / 1000.0:.3f}")
    print(f"sha256 {digest(state)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
