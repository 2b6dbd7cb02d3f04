"""filtered_lrelu: the XLA path against the fused Pallas kernels at StyleGAN3 layer sizes.
Prints a table, asserts nothing.

    python benchmarks/filtered_lrelu.py [--configs t256,t1024,r256] [--batch 4] [--reps 20]
    python benchmarks/filtered_lrelu.py --interpret      # CPU smoke run: tiny sizes, Pallas interpret mode
    python benchmarks/filtered_lrelu.py --block 8,8,16   # tuning: one tile/channel block for every layer

Runs on the default device. For each layer: milliseconds per call of the forward and of the forward
plus backward (gradient wrt x and b), for impl='xla' and impl='pallas', their ratio, and layers/s
(calls per second) of the Pallas path. The layers are representative shapes of the StyleGAN3
synthesis networks (margins included, conv padding not modelled), not an exact layer schedule:

  config T: separable Kaiser filters; a layer whose sampling rate doubles runs up 4 (24 taps),
            the others up 2 (12 taps); down 2 (12 taps) except for the ToRGB layer.
  config R: the same shapes with radial (2-D jinc) down filters.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from gigajax import ops

# (input size, output size, channels, up) per layer; down is 2 and the taps are 6*up / 12 except
# for the ToRGB row (up 1, down 1, no filters: bias, gain and clamp only).
T256 = [(36, 36, 512, 2), (36, 52, 512, 4), (52, 52, 512, 2), (52, 84, 512, 4), (84, 84, 512, 2),
        (84, 148, 362, 4), (148, 148, 256, 2), (148, 276, 181, 4), (276, 276, 128, 2), (276, 256, 128, 2),
        (256, 256, 3, 1)]
T1024 = [(36, 36, 512, 2), (52, 84, 512, 4), (148, 148, 512, 2), (276, 276, 256, 2), (276, 532, 181, 4),
         (532, 532, 128, 2), (532, 1044, 90, 4), (1044, 1044, 64, 2), (1044, 1024, 64, 2), (1024, 1024, 3, 1)]
CONFIGS = {"t256": (T256, False), "t1024": (T1024, False), "r256": (T256, True)}


def bench(fn, *args, reps):
    """Median ms per call of a jitted fn (compile excluded)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def layer_args(size_in, size_out, up, radial):
    """Filters and padding of one layer: output `size_out` from input `size_in`."""
    if up == 1:
        return dict(fu=None, fd=None, up=1, down=1, padding=(size_out - size_in) // 2, gain=1.0, slope=1.0, clamp=256.0)
    down, ku, kd = 2, 6 * up, 12
    fu = ops.design_lowpass_filter(ku, cutoff=16.0, width=10.0, fs=32 * up)
    fd = ops.design_lowpass_filter(kd, cutoff=16.0, width=10.0, fs=64, radial=radial)
    # Total padding that gives exactly size_out outputs, split about evenly.
    total = size_out * down - size_in * up + ku + kd - 1 - down
    return dict(fu=fu, fd=fd, up=up, down=down, padding=[(total + 1) // 2, total // 2] * 2, clamp=256.0)


def run_layer(x, b, kw, impl, reps, block=None, interpret=None):
    """(forward ms, forward + backward ms) of one layer with impl 'xla' or 'pallas'."""
    if impl == "xla":
        def f(x, b):
            return ops.filtered_lrelu(x, b=b, impl="xla", **kw)
    else:
        def f(x, b):
            return ops.filtered_lrelu_pallas(x, b=b, block=block, interpret=interpret, **kw)

    fwd = jax.jit(f)
    dy = jnp.ones_like(fwd(x, b))
    fwd_bwd = jax.jit(lambda x, b, dy: jax.vjp(f, x, b)[1](dy))
    return bench(fwd, x, b, reps=reps), bench(fwd_bwd, x, b, dy, reps=reps)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="t256,t1024,r256", help="comma-separated: " + ", ".join(CONFIGS))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--block", default=None, help="rows,cols,channels per grid step for the Pallas kernels")
    ap.add_argument("--interpret", action="store_true",
                    help="CPU smoke run: Pallas interpret mode, sizes / 8, at most 8 channels, batch 1, 1 rep")
    args = ap.parse_args()
    block = tuple(int(v) for v in args.block.split(",")) if args.block else None
    if args.interpret:
        args.batch, args.reps = 1, 1
    dev = jax.devices()[0]
    print(f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}), batch {args.batch}, {args.dtype}, "
          f"median of {args.reps}{', interpret mode' if args.interpret else ''}")
    head = (f"{'layer':<34} {'xla fwd':>9} {'pallas':>9} {'ratio':>6} {'xla f+b':>9} {'pallas':>9} {'ratio':>6} "
            f"{'pallas fwd/s':>12} {'f+b/s':>8}")
    rng = np.random.RandomState(0)
    for name in args.configs.split(","):
        layers, radial = CONFIGS[name]
        print(f"\n{name}  ({'radial' if radial else 'separable'} down filters)\n{head}")
        tot = np.zeros(4)
        for size_in, size_out, c, up in layers:
            if args.interpret:
                size_in, size_out, c = max(4, size_in // 8), max(4, size_out // 8), min(c, 8)
            kw = layer_args(size_in, size_out, up, radial)
            x = jnp.asarray(rng.randn(args.batch, size_in, size_in, c), args.dtype)
            b = jnp.asarray(rng.randn(c), args.dtype)
            ms = [*run_layer(x, b, kw, "xla", args.reps),
                  *run_layer(x, b, kw, "pallas", args.reps, block, True if args.interpret else None)]
            tot += ms
            label = f"{size_in}->{size_out} x{c} up{kw['up']}/down{kw['down']}"
            print(f"{label:<34} {ms[0]:9.3f} {ms[2]:9.3f} {ms[0] / ms[2]:6.2f} {ms[1]:9.3f} {ms[3]:9.3f} "
                  f"{ms[1] / ms[3]:6.2f} {1e3 / ms[2]:12.1f} {1e3 / ms[3]:8.1f}", flush=True)
        print(f"{'all layers (ms), images/s':<34} {tot[0]:9.3f} {tot[2]:9.3f} {tot[0] / tot[2]:6.2f} {tot[1]:9.3f} "
              f"{tot[3]:9.3f} {tot[1] / tot[3]:6.2f} {1e3 * args.batch / tot[2]:12.1f} "
              f"{1e3 * args.batch / tot[3]:8.1f}")
    print("\nratio = xla ms / pallas ms (> 1: Pallas faster); */s: Pallas calls (layers) per second, and "
          "images/s for one pass through all the listed layers.")


if __name__ == "__main__":
    main()
