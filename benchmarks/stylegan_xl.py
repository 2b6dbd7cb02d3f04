"""StyleGAN-XL throughput on the current JAX devices, split by component, at the main job's config.

    python benchmarks/stylegan_xl.py [--variant default] [--stage 0|1] [--batch N] [--iters 5]

For one stage of `experiments.stylegan_xl` (stage 0 = the 16x16 stem, 1 = the 32x32 superres stage,
built on a random stem), each timed as the median of --iters calls after one warm-up (compile)
call, one device, float32:

  generator         G forward (mapping + synthesis), and forward + backward w.r.t. its params
  feature network   the frozen part of D (DiffAugment, resize, EfficientNet-Lite0, random
                    projections) forward, and its input gradient (what G's step differentiates)
  discriminators    the trainable mini-discriminators on the projected maps, forward, and
                    forward + backward w.r.t. their params and inputs
  G step, D step    the trainer's own Gmain and Dmain phase programs (`jit_train_step`), whole

images/s = batch / seconds. The component rows do not add up to the steps exactly: XLA fuses and
schedules the whole program. It prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import experiments.stylegan_xl as E  # noqa: E402
from gigajax.models.projected.projector import FeatureProjector  # noqa: E402
from gigajax.models.projected import MultiScaleD, nominal_resolutions, projection_channels  # noqa: E402
from gigajax.train.recipe import DataSpec  # noqa: E402
from gigajax.train.export import save_variables  # noqa: E402
from gigajax.train.state import create_state  # noqa: E402
from gigajax.train.step import jit_train_step  # noqa: E402


def timed(fn, iters):
    fn()                                        # compile + warm up
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def block(x):
    return jax.block_until_ready(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="default")
    ap.add_argument("--stage", type=int, default=0)
    ap.add_argument("--batch", type=int, default=None, help="default: the variant's batch")
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args(argv)

    if args.stage not in (0, 1):
        raise SystemExit("--stage: 0 (the stem) or 1 (the first superres stage, on a random stem)")
    config = E.get_config(args.variant)
    batch = args.batch or int(config.batch_size)
    config.batch_size = batch
    res = int(config.stages[args.stage][0])
    spec = DataSpec(res, 1 if config.dataset in ("mnist5k", "animal-mnist") else 3, 10)
    with tempfile.TemporaryDirectory() as tmp:
        sc = E.stage_config(config, args.stage, Path(tmp))
        if args.stage:   # a random stem stands in for a trained one: same shapes, same cost
            stem = E.build(E.stage_config(config, 0, Path(tmp)), DataSpec(res // 2, spec.channels, spec.c_dim))
            variables = jax.jit(stem.G.init)(jax.random.PRNGKey(0), jnp.zeros((2, stem.z_dim)),
                                             jnp.zeros((2, spec.c_dim)))
            save_variables(sc.model.stem_path, variables)
        recipe = E.build(sc, spec)
    G, D = recipe.G, recipe.D

    rng = np.random.default_rng(0)
    data = {"image": rng.integers(0, 256, (batch, res, res, spec.channels), dtype=np.uint8),
            "label": np.eye(spec.c_dim, dtype=np.float32)[rng.integers(0, spec.c_dim, batch)]}
    mesh = Mesh(np.asarray(jax.devices()[:1]), ("data",))
    repl, data_sh = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    opts = recipe.optimizers()
    state = jax.jit(lambda k, b: create_state(recipe, k, b, opts), out_shardings=repl)(jax.random.key(0), data)
    gv = {"params": state.params["G"], **state.colls["G"]}
    z = jax.random.normal(jax.random.PRNGKey(1), (batch, recipe.z_dim))
    c = jnp.asarray(data["label"])
    img = jnp.asarray(data["image"], jnp.float32) / 127.5 - 1
    rows = []

    def row(name, seconds):
        rows.append((name, seconds))
        print(f"{name:<48} {seconds * 1e3:9.1f} ms  {batch / seconds:8.1f} img/s", flush=True)

    print(f"StyleGAN-XL {args.variant}, stage {args.stage} ({res}x{res}), batch {batch}, {jax.devices()[0].platform}, "
          f"G {sum(x.size for x in jax.tree.leaves(state.params['G'])) / 1e6:.2f}M params, "
          f"D {sum(x.size for x in jax.tree.leaves(state.params['D'])) / 1e6:.2f}M trainable")
    g_fwd = jax.jit(lambda v, z: G.apply(v, z, c))
    row("generator forward", timed(lambda: block(g_fwd(gv, z)), args.iters))
    g_grad = jax.jit(jax.grad(lambda p, z: jnp.sum(jnp.square(G.apply({**gv, "params": p}, z, c)))))
    row("generator forward + backward", timed(lambda: block(g_grad(gv["params"], z)), args.iters))

    name = D.backbones[0]
    fp = FeatureProjector(name, D.interp_size, D.cout, D.expand)
    fv = {"frozen": state.colls["D"]["frozen"][f"{name}_features"]}
    x3 = jnp.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img
    f_fwd = jax.jit(lambda x: fp.apply(fv, x))
    row(f"feature network ({name}) forward", timed(lambda: block(f_fwd(x3)), args.iters))
    f_grad = jax.jit(jax.grad(lambda x: sum(jnp.sum(jnp.square(f)) for f in fp.apply(fv, x))))
    row("feature network input gradient", timed(lambda: block(f_grad(x3)), args.iters))
    feats = f_fwd(x3)
    md = MultiScaleD(projection_channels(D.cout, D.expand), nominal_resolutions(D.proj_im_res), c_dim=recipe.c_dim,
                     cmap_dim=D.cmap_dim, embedding_dim=D.embedding_dim, width_div=D.width_div)
    dv = {"params": state.params["D"][f"{name}_discs"], "spectral": state.colls["D"]["spectral"][f"{name}_discs"]}
    d_fwd = jax.jit(lambda p, f: md.apply({**dv, "params": p}, f, c, mutable=["spectral"]))
    row("discriminators forward", timed(lambda: block(d_fwd(dv["params"], feats)), args.iters))
    d_grad = jax.jit(jax.grad(lambda p, f: jnp.sum(md.apply({**dv, "params": p}, f, c, mutable=["spectral"])[0]),
                              argnums=(0, 1)))
    row("discriminators forward + backward", timed(lambda: block(d_grad(dv["params"], feats)), args.iters))

    step = jit_train_step(recipe, opts, batch_size=batch, ema_kimg=10.0, ema_rampup=0.05, state_sharding=repl,
                          batch_sharding=data_sh, donate=False)
    from gigajax.train.step import _run_phase, to_model_batch
    carry = (state.params, state.colls, state.aux, state.opt)
    for i, phase in enumerate(recipe.phases):
        prog = jax.jit(lambda carry, b, rng, i=i: _run_phase(recipe.phases, opts, i, carry, to_model_batch(b), rng))
        row(f"{phase.name} phase program (the G step)" if phase.module == "G" else f"{phase.name} phase program (the D step)",
            timed(lambda: block(prog(carry, data, state.rng)[1]), args.iters))
    s = state
    total = timed(lambda: block(step(s, data, 1)[1]), args.iters)
    row("whole training step (all phases + EMA)", total)
    return rows


if __name__ == "__main__":
    main()
