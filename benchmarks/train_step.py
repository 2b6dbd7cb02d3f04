"""Train-step throughput of DCGAN and WGAN-GP at batch 64 (32x32x1, mnist5k shapes) on the
current devices, through the same sharded jit step the trainer uses.

    python benchmarks/train_step.py [--batch 64] [--steps 50] [--models dcgan,wgan_gp]

Prints step time and images/s (real images through D per second). For WGAN-GP, G updates
every n_critic=5 steps, so the reported step is the average over a full critic cycle.
Asserts nothing.
"""

import argparse
import time

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from gigajax.train import DataSpec
from gigajax.train.loop import make_mesh
from gigajax.train.state import create_state
from gigajax.train.step import jit_train_step


def recipe_for(name, spec):
    if name == "dcgan":
        from gigajax.train.recipes.dcgan import DCGANRecipe
        return DCGANRecipe(spec)
    if name == "wgan_gp":
        from gigajax.train.recipes.wgan_gp import WGANGPRecipe
        return WGANGPRecipe(spec)
    raise ValueError(f"unknown model {name!r}; known: dcgan, wgan_gp")


def bench(name, batch, steps):
    spec = DataSpec(32, 1, 10)
    recipe = recipe_for(name, spec)
    mesh = make_mesh()
    repl, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    opts = recipe.optimizers()
    step = jit_train_step(recipe, opts, batch_size=batch, ema_kimg=10.0, ema_rampup=0.0,
                          state_sharding=repl, batch_sharding=data)
    rng = np.random.default_rng(0)
    b = {"image": jax.device_put(rng.integers(0, 256, (batch, 32, 32, 1), dtype=np.uint8), data),
         "label": jax.device_put(np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)], data)}
    state = jax.jit(lambda k, x: create_state(recipe, k, x, opts), out_shardings=repl)(jax.random.key(0), b)
    cycle = max(p.interval for p in recipe.phases)   # every distinct program compiles in the warm-up
    t0 = time.perf_counter()
    state, m = step(state, b, 0)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0
    for i in range(1, cycle + 1):
        state, m = step(state, b, i)
    jax.block_until_ready(state)
    steps = max(cycle, steps // cycle * cycle)
    t0 = time.perf_counter()
    for i in range(steps):
        state, m = step(state, b, i)
    jax.block_until_ready(state)
    dt = (time.perf_counter() - t0) / steps
    nparams = {k: sum(x.size for x in jax.tree_util.tree_leaves(v)) for k, v in state.params.items()}
    print(f"{name:<8} batch {batch:>4}  step {dt * 1e3:8.2f} ms  {batch / dt:9.1f} img/s  "
          f"first call (compile) {compile_s:6.1f} s  params G {nparams['G'] / 1e6:.2f}M D {nparams['D'] / 1e6:.2f}M")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--models", default="dcgan,wgan_gp")
    args = ap.parse_args()
    print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()})")
    for name in args.models.split(","):
        bench(name, args.batch, args.steps)


if __name__ == "__main__":
    main()
