"""StyleGAN2 throughput on the current JAX devices: G forward and one G+D training step, and,
optionally, the official PyTorch code on the same shapes beside it.

    python benchmarks/stylegan2.py [--resolution 64] [--channel-base 16384] [--channel-max 512]
        [--batch 8] [--iters 5] [--official PATH] [--skip-train] [--json PATH]

Defaults are a 64x64 StyleGAN2 in float32: z_dim = w_dim = 512, an 8-layer mapping network,
G 'skip', D 'resnet', num_fp16_res=0, conv_clamp=None, batch 8, c_dim 0. Measured:

1. G forward (noise_mode='const', truncation_psi=1), `gigajax.models.stylegan2.Generator` under
   `jax.jit`: compile time, then the median of --iters calls after one warm-up call. XLA's cost
   analysis of the compiled program gives the FLOPs per image (2 FLOP per multiply-add) and so
   the GFLOP/s achieved.
2. One training step through the trainer's own step (`StyleGAN2Recipe` + `jit_train_step`, one
   device, no augmentation, pl_weight 2, style mixing 0.9, R1 every 16, path length every 4):
   (a) the plain step, Gmain + Dmain (median over --iters steps where no lazy regulariser is due);
   (b) the amortised step: the average over --cycles runs of 16 consecutive steps, so that Greg
   (every 4) and Dreg (every 16) are included at their real rates. Each phase program compiles
   on first use; the compile time of each (trace + lowering + XLA compile, from JAX's monitoring
   events) is reported once.
3. With torch importable and `--official PATH` (or env GIGAJAX_NVLABS_SRC) pointing at your own
   clone of NVlabs/stylegan3 (`training/networks_stylegan2.py`) or NVlabs/stylegan2-ada-pytorch
   (`training/networks.py`), the same G and D built from the official code (imported from PATH
   at run time; nothing of it is part of gigajax), timed the same way with
   torch.set_num_threads(--threads) under torch.no_grad() for the forward, and a training step
   written like the official training_loop.py: the official `training.loss.StyleGAN2Loss`,
   phases Gmain/Greg/Dmain/Dreg with accumulate_gradients, nan_to_num on the gradients, Adam
   steps with the lazy-regularisation lr/beta adjustment, and the G_ema update. The official
   custom CUDA ops fall back to their reference implementations on CPU. The ratio printed is
   ours / official throughput (> 1: gigajax is faster).

   Before timing, a tiny G and D (16x16) are built in the official code with perturbed weights,
   copied into ours with `gigajax.compat.stylegan2_convert.official_to_variables`, and both
   outputs (truncation_psi 0.7, so w_avg counts too) compared: relative L2, printed, not asserted.
   The timed G of ours also gets the official G's weights, and the rel-L2 of the two timed
   outputs is printed too.

modulated convolution: --fused-modconv false (default) runs both codes with the activation-scaling
form (gigajax's default; what official training uses via fused_modconv_default='inference_only');
'true' runs both with per-sample weights (grouped convolution); 'default' leaves each code to its
own default for the forward (gigajax: false; official G in eval mode: true). The official
training step always uses train.py's 'inference_only' (stylegan3 repo) / training-mode default
(stylegan2-ada-pytorch), i.e. the activation-scaling form, and gigajax its default (false).

Run it on an otherwise idle machine. torch's OpenMP threads spin-wait at every parallel region:
with another process on the cores, the official G forward (tiny 16x16 G, batch 4) at --threads 2
on 2 busy cores took 490 ms instead of 3-9 ms (OMP_WAIT_POLICY=PASSIVE: 8-15 ms). XLA:CPU
suffers far less, so a loaded machine inflates the ratio.

Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import itertools
import json
import os
import platform
import sys
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gigajax.compat.stylegan2_convert import official_to_variables
from gigajax.models.stylegan2 import Discriminator, Generator
from gigajax.train import DataSpec
from gigajax.train.recipes.stylegan2 import StyleGAN2Recipe
from gigajax.train.state import create_state
from gigajax.train.step import due_phases, jit_train_step

PL_INTERVAL, R1_INTERVAL = 4, 16          # official train.py (G_reg_interval, D_reg_interval)
GLR = DLR = 0.002                          # official train.py defaults for --cfg=stylegan2
TINY = dict(resolution=16, channel_base=256, channel_max=32, z_dim=32, w_dim=32, map_layers=2, batch=4,
            mbstd_group=2)

# --- compile-time accounting (JAX monitoring events) ------------------------------------------

_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_events: list | None = None


def _listener(event, duration, **kwargs):
    if _events is not None and event in _COMPILE_EVENTS:
        _events.append((event, float(duration), kwargs.get("fun_name", "")))


jax.monitoring.register_event_duration_secs_listener(_listener)


@contextlib.contextmanager
def compile_events():
    """Collect (event, seconds, fun_name) of every trace/lowering/XLA compile inside the block."""
    global _events
    _events = out = []
    try:
        yield out
    finally:
        _events = None


def _sum(events, kind=None):
    return sum(d for e, d, _ in events if kind is None or e.endswith(kind))


# --- small helpers ----------------------------------------------------------------------------

def rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def timed(fn, iters):
    """Median seconds of `iters` calls of fn() (fn must block until its result is ready)."""
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), times


def fused_arg(mode):
    return {"false": False, "true": True, "default": None}[mode]


def ours_G(cfg):
    return Generator.create(z_dim=cfg["z_dim"], c_dim=0, w_dim=cfg["w_dim"], img_resolution=cfg["resolution"],
                            img_channels=3, mapping_kwargs=dict(num_layers=cfg["map_layers"]),
                            channel_base=cfg["channel_base"], channel_max=cfg["channel_max"], num_fp16_res=0,
                            conv_clamp=None, architecture=cfg["g_architecture"])


def ours_D(cfg):
    return Discriminator(c_dim=0, img_resolution=cfg["resolution"], img_channels=3,
                         architecture=cfg["d_architecture"], channel_base=cfg["channel_base"],
                         channel_max=cfg["channel_max"], num_fp16_res=0, conv_clamp=None,
                         epilogue_kwargs=dict(mbstd_group_size=cfg["mbstd_group"]))


# --- the official code (optional) -------------------------------------------------------------

class Official:
    """The user's clone of NVlabs' code, imported from `path` at run time."""

    def __init__(self, path, threads):
        import torch
        self.torch = torch
        self.path = path
        torch.set_num_threads(threads)
        sys.path.insert(0, path)
        import importlib
        self.flavor = ("stylegan3" if os.path.isfile(os.path.join(path, "training", "networks_stylegan2.py"))
                       else "stylegan2-ada-pytorch")
        self.shimmed = False
        if self.flavor == "stylegan3":
            try:
                import pkg_resources  # noqa: F401  (stylegan3's conv2d_gradfix imports parse_version from it)
            except ImportError:       # setuptools >= 81 / no setuptools: a one-function stand-in
                try:
                    from packaging.version import parse as parse_version
                except ImportError:
                    def parse_version(v):
                        return tuple(int(p) if p.isdigit() else 0 for p in v.split("+")[0].split(".")[:3])
                shim = types.ModuleType("pkg_resources")
                shim.parse_version = parse_version
                sys.modules["pkg_resources"] = shim
                self.shimmed = True
            self.nets = importlib.import_module("training.networks_stylegan2")
        else:
            self.nets = importlib.import_module("training.networks")
        self.loss = importlib.import_module("training.loss")

    def G(self, cfg):
        syn = dict(channel_base=cfg["channel_base"], channel_max=cfg["channel_max"], num_fp16_res=0, conv_clamp=None,
                   architecture=cfg["g_architecture"])
        common = dict(z_dim=cfg["z_dim"], c_dim=0, w_dim=cfg["w_dim"], img_resolution=cfg["resolution"],
                      img_channels=3, mapping_kwargs=dict(num_layers=cfg["map_layers"]))
        if self.flavor == "stylegan3":   # train.py --cfg=stylegan2 sets this
            return self.nets.Generator(**common, fused_modconv_default="inference_only", **syn)
        return self.nets.Generator(**common, synthesis_kwargs=syn)

    def D(self, cfg):
        return self.nets.Discriminator(c_dim=0, img_resolution=cfg["resolution"], img_channels=3,
                                       architecture=cfg["d_architecture"], channel_base=cfg["channel_base"],
                                       channel_max=cfg["channel_max"], num_fp16_res=0, conv_clamp=None,
                                       block_kwargs={}, mapping_kwargs={},
                                       epilogue_kwargs=dict(mbstd_group_size=cfg["mbstd_group"]))

    @staticmethod
    def state(module):
        return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_official(path, threads):
    """(Official or None, a line saying what happened)."""
    path = path or os.environ.get("GIGAJAX_NVLABS_SRC")
    how = ("pass --official PATH (or set GIGAJAX_NVLABS_SRC) to your own clone of NVlabs/stylegan3 or "
           "NVlabs/stylegan2-ada-pytorch, with torch installed, to time the official code beside it")
    if not path:
        return None, "official code: not compared; " + how
    try:
        import torch  # noqa: F401
    except ImportError:
        return None, f"official code: not compared, torch is not importable; {how}"
    path = os.path.abspath(os.path.expanduser(path))
    if not (os.path.isfile(os.path.join(path, "training", "networks_stylegan2.py"))
            or os.path.isfile(os.path.join(path, "training", "networks.py"))):
        return None, (f"official code: not compared, {path} has neither training/networks_stylegan2.py nor "
                      f"training/networks.py; {how}")
    off = Official(path, threads)
    import torch
    line = (f"official code: {off.flavor} from {path}, torch {torch.__version__}, {torch.get_num_threads()} threads"
            + (" (pkg_resources missing: a parse_version shim was installed)" if off.shimmed else ""))
    return off, line


# --- sanity: same weights, same images --------------------------------------------------------

def sanity(off, base_cfg, fused):
    """Tiny official G and D with perturbed weights -> ours; relative L2 of their outputs."""
    torch = off.torch
    cfg = {**base_cfg, **TINY}
    torch.manual_seed(0)
    Gt, Dt = off.G(cfg).eval(), off.D(cfg).eval()
    with torch.no_grad():   # trained-looking values: zero biases / noise strengths would hide mistakes
        for p in list(Gt.parameters()) + list(Dt.parameters()):
            p.add_(0.1 * torch.randn_like(p))
        Gt.mapping.w_avg.copy_(torch.randn_like(Gt.mapping.w_avg))
    G, D = ours_G(cfg), ours_D(cfg)
    n = cfg["batch"]
    z = np.random.RandomState(1).randn(n, cfg["z_dim"]).astype(np.float32)
    c = np.zeros((n, 0), np.float32)
    g_tmpl = jax.eval_shape(lambda: G.init({"params": jax.random.key(0)}, jnp.asarray(z), jnp.asarray(c),
                                           noise_mode="const"))
    gv = official_to_variables(off.state(Gt), template=g_tmpl)
    kw = {} if fused is None else {"fused_modconv": fused}
    with torch.no_grad():
        img_t = Gt(torch.from_numpy(z), torch.from_numpy(c), truncation_psi=0.7, noise_mode="const", **kw)
        logits_t = Dt(img_t, torch.from_numpy(c)).numpy()
    img_t = img_t.numpy().transpose(0, 2, 3, 1)
    img = G.apply(gv, z, c, truncation_psi=0.7, noise_mode="const", fused_modconv=fused)
    d_tmpl = jax.eval_shape(lambda: D.init({"params": jax.random.key(0)}, jnp.asarray(img_t), jnp.asarray(c)))
    dv = official_to_variables(off.state(Dt), template=d_tmpl)
    logits = D.apply(dv, img_t, c)
    return rel_l2(img, img_t), rel_l2(logits, logits_t)


# --- 1. G forward -----------------------------------------------------------------------------

def bench_g_ours(cfg, iters, fused, variables=None):
    G = ours_G(cfg)
    B = cfg["batch"]
    z = jnp.asarray(np.random.RandomState(0).randn(B, cfg["z_dim"]).astype(np.float32))
    c = jnp.zeros((B, 0), jnp.float32)
    if variables is None:
        variables = jax.jit(lambda k: G.init({"params": k}, z, c, noise_mode="const"))(jax.random.key(0))
    fwd = jax.jit(lambda v, z: G.apply(v, z, c, truncation_psi=1, noise_mode="const", fused_modconv=fused))
    t = time.perf_counter()
    compiled = fwd.lower(variables, z).compile()
    compile_s = time.perf_counter() - t
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float((cost or {}).get("flops", float("nan"))) / B
    out = jax.block_until_ready(compiled(variables, z))
    dt, _ = timed(lambda: jax.block_until_ready(compiled(variables, z)), iters)
    return dict(compile_s=compile_s, s=dt, img_s=B / dt, flops_per_img=flops), np.asarray(z), np.asarray(out)


def bench_g_official(off, cfg, iters, fused, z, G=None):
    torch = off.torch
    G = (G if G is not None else off.G(cfg)).eval().requires_grad_(False)
    zt = torch.from_numpy(np.array(z))
    c = torch.zeros([z.shape[0], 0])
    kw = {} if fused is None else {"fused_modconv": fused}
    with torch.no_grad():
        out = G(zt, c, truncation_psi=1, noise_mode="const", **kw)
        dt, _ = timed(lambda: G(zt, c, truncation_psi=1, noise_mode="const", **kw), iters)
    return dict(s=dt, img_s=z.shape[0] / dt), out.numpy().transpose(0, 2, 3, 1)


# --- 2. training step -------------------------------------------------------------------------

def _phase_schedule(phases):
    """Indices of first calls that compile something new (lazy phases one at a time), the plain
    step indices (no lazy phase due; an endless iterator), and the cycle length."""
    cycle = max(int(p.interval) for p in phases)
    compiled, firsts = set(), []
    for i in list(range(1, cycle)) + [0]:
        new = [p.name for p, d in zip(phases, due_phases(phases, i)) if d and p.name not in compiled]
        if new:
            firsts.append((i, new))
            compiled.update(new)
    plain = (i for i in itertools.count(1) if not any(d and p.interval > 1
                                                      for p, d in zip(phases, due_phases(phases, i))))
    return firsts, plain, cycle


def bench_train_ours(cfg, iters, cycles):
    B, res = cfg["batch"], cfg["resolution"]
    recipe = StyleGAN2Recipe(DataSpec(res, 3, 0), z_dim=cfg["z_dim"], w_dim=cfg["w_dim"],
                             map_layers=cfg["map_layers"], cbase=cfg["channel_base"], cmax=cfg["channel_max"],
                             g_architecture=cfg["g_architecture"], d_architecture=cfg["d_architecture"],
                             conv_clamp=None, mbstd_group=cfg["mbstd_group"], r1_gamma=cfg["r1_gamma"],
                             r1_interval=R1_INTERVAL, pl_weight=cfg["pl_weight"], pl_interval=PL_INTERVAL,
                             style_mixing_prob=cfg["style_mixing"], glr=GLR, dlr=DLR, augment="noaug")
    return bench_train_recipe(recipe, B, res, iters, cycles)


def bench_train_recipe(recipe, B, res, iters, cycles):
    """The trainer's own step for `recipe` on one device (random uint8 RGB batch of B at res):
    per-phase compile times, the plain step, and the --cycles-averaged 16-step cycle."""
    mesh = Mesh(np.asarray(jax.devices()[:1]), ("data",))
    repl, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    opts = recipe.optimizers()
    step = jit_train_step(recipe, opts, batch_size=B, ema_kimg=B * 10 / 32, ema_rampup=0.05,
                          state_sharding=repl, batch_sharding=data)
    rng = np.random.default_rng(0)
    batch = {"image": jax.device_put(rng.integers(0, 256, (B, res, res, 3), dtype=np.uint8), data),
             "label": jax.device_put(np.zeros((B, 0), np.float32), data)}
    state = jax.jit(lambda k, b: create_state(recipe, k, b, opts), out_shardings=repl)(jax.random.key(0), batch)
    jax.block_until_ready(state)
    phases = recipe.phases
    firsts, plain, cycle = _phase_schedule(phases)

    compile_info = []
    for i, new in firsts:
        with compile_events() as ev:
            t = time.perf_counter()
            state, m = step(state, batch, i)
            jax.block_until_ready(state)
            wall = time.perf_counter() - t
        names = iter(new)   # phase programs are jit(<lambda>)s and compile in phase order
        backend = [(next(names, f) if "<lambda>" in f else f.replace("jit(_finish)", "finish"), round(d, 2))
                   for e, d, f in ev if e.endswith("backend_compile_duration")]
        compile_info.append(dict(phases=new + (["finish"] if not compile_info else []), step_index=i,
                                 compile_s=_sum(ev), xla_compile_s=sum(d for _, d in backend),
                                 programs=backend, first_call_s=wall))

    def one(i):
        nonlocal state
        state, _ = step(state, batch, i)
        jax.block_until_ready(state)

    plain_s, _ = timed(lambda: one(next(plain)), iters)
    per_step, amort = cycle_times(one, cycle, cycles)
    kinds = {}
    for i, d in per_step:
        kinds.setdefault("+".join(p.name for p, due in zip(phases, due_phases(phases, i)) if due), []).append(d)
    return dict(plain_s=plain_s, plain_img_s=B / plain_s, amortised_s=amort, amortised_img_s=B / amort,
                by_phases_s={k: float(np.median(v)) for k, v in kinds.items()}, compile=compile_info,
                cycle=cycle, cycles=cycles)


def bench_train_official(off, cfg, iters, cycles):
    torch = off.torch
    B, res = cfg["batch"], cfg["resolution"]
    torch.manual_seed(0)
    G = off.G(cfg).train().requires_grad_(False)
    D = off.D(cfg).train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    loss_kw = dict(r1_gamma=cfg["r1_gamma"], style_mixing_prob=cfg["style_mixing"], pl_weight=cfg["pl_weight"])
    params = inspect.signature(off.loss.StyleGAN2Loss.__init__).parameters
    if "G" in params:   # stylegan3 repo
        loss = off.loss.StyleGAN2Loss(device=torch.device("cpu"), G=G, D=D, pl_no_weight_grad=True, **loss_kw)
    else:               # stylegan2-ada-pytorch
        loss = off.loss.StyleGAN2Loss(device=torch.device("cpu"), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D,
                                      **loss_kw)
    acc_params = inspect.signature(loss.accumulate_gradients).parameters

    phases = []   # as training_loop.py builds them (lazy regularisation for both networks)
    for name, module, lr, interval in [("G", G, GLR, PL_INTERVAL), ("D", D, DLR, R1_INTERVAL)]:
        r = interval / (interval + 1)
        opt = torch.optim.Adam(module.parameters(), lr=lr * r, betas=[0 ** r, 0.99 ** r], eps=1e-8)
        phases += [dict(name=name + "main", module=module, opt=opt, interval=1),
                   dict(name=name + "reg", module=module, opt=opt, interval=interval)]
    real_u8 = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (B, 3, res, res), dtype=np.uint8))
    c = torch.zeros([B, 0])
    ema_nimg_full = B * 10 / 32 * 1000
    cur_nimg = 0

    def one(batch_idx):
        nonlocal cur_nimg
        real = real_u8.to(torch.float32) / 127.5 - 1
        all_gen_z = torch.randn([len(phases) * B, G.z_dim]).split(B)
        for phase, gen_z in zip(phases, all_gen_z):
            if batch_idx % phase["interval"] != 0:
                continue
            phase["opt"].zero_grad(set_to_none=True)
            phase["module"].requires_grad_(True)
            if "cur_nimg" in acc_params:
                loss.accumulate_gradients(phase=phase["name"], real_img=real, real_c=c, gen_z=gen_z, gen_c=c,
                                          gain=phase["interval"], cur_nimg=cur_nimg)
            else:
                loss.accumulate_gradients(phase=phase["name"], real_img=real, real_c=c, gen_z=gen_z, gen_c=c,
                                          sync=True, gain=phase["interval"])
            phase["module"].requires_grad_(False)
            ps = [p for p in phase["module"].parameters() if p.grad is not None]
            if ps:
                flat = torch.cat([p.grad.flatten() for p in ps])
                torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
                for p, g in zip(ps, flat.split([p.numel() for p in ps])):
                    p.grad = g.reshape(p.shape)
            phase["opt"].step()
        with torch.no_grad():
            ema_beta = 0.5 ** (B / max(min(ema_nimg_full, cur_nimg * 0.05), 1e-8))
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, ema_beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)
        cur_nimg += B

    cycle = max(PL_INTERVAL, R1_INTERVAL)
    t = time.perf_counter()
    one(0)                      # warm-up: every phase once
    first_s = time.perf_counter() - t
    plain = (i for i in itertools.count(1) if i % PL_INTERVAL and i % R1_INTERVAL)
    one(next(plain))
    plain_s, _ = timed(lambda: one(next(plain)), iters)
    per_step, amort = cycle_times(one, cycle, cycles)
    return dict(plain_s=plain_s, plain_img_s=B / plain_s, amortised_s=amort, amortised_img_s=B / amort,
                first_call_s=first_s)


# --- main -------------------------------------------------------------------------------------

def cycle_times(one, cycle, cycles):
    """Run steps 0..cycle-1 `cycles` times: ([(step index, seconds)], mean seconds per step)."""
    per_step = []
    for _ in range(cycles):
        for i in range(cycle):
            t = time.perf_counter()
            one(i)
            per_step.append((i, time.perf_counter() - t))
    return per_step, sum(d for _, d in per_step) / len(per_step)


def _ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--channel-base", type=int, default=16384)
    ap.add_argument("--channel-max", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=5, help="timed calls (G forward, plain train step) after warm-up")
    ap.add_argument("--cycles", type=int, default=1, help="16-step cycles averaged for the amortised train step")
    ap.add_argument("--z-dim", type=int, default=512)
    ap.add_argument("--w-dim", type=int, default=512)
    ap.add_argument("--map-layers", type=int, default=8)
    ap.add_argument("--g-architecture", default="skip", choices=["orig", "skip", "resnet"])
    ap.add_argument("--d-architecture", default="resnet", choices=["orig", "skip", "resnet"])
    ap.add_argument("--mbstd-group", type=int, default=4)
    ap.add_argument("--r1-gamma", type=float, default=1.0)
    ap.add_argument("--pl-weight", type=float, default=2.0)
    ap.add_argument("--style-mixing", type=float, default=0.9)
    ap.add_argument("--fused-modconv", default="false", choices=["false", "true", "default"],
                    help="modulated-conv form for the G forward of both codes (see above)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="torch threads for the official code (default: all cores, as XLA:CPU uses)")
    ap.add_argument("--official", default=None, help="your clone of NVlabs/stylegan3 or stylegan2-ada-pytorch")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args()

    cfg = dict(resolution=args.resolution, channel_base=args.channel_base, channel_max=args.channel_max,
               batch=args.batch, z_dim=args.z_dim, w_dim=args.w_dim, map_layers=args.map_layers,
               g_architecture=args.g_architecture, d_architecture=args.d_architecture, mbstd_group=args.mbstd_group,
               r1_gamma=args.r1_gamma, pl_weight=args.pl_weight, style_mixing=args.style_mixing)
    fused = fused_arg(args.fused_modconv)
    print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()}), jax "
          f"{jax.__version__}, {len(os.sched_getaffinity(0))} cores visible")
    print("config: " + ", ".join(f"{k}={v}" for k, v in cfg.items())
          + f", float32, c_dim=0, num_fp16_res=0, conv_clamp=None, fused_modconv={args.fused_modconv}")
    off, line = load_official(args.official, args.threads)
    print(line, flush=True)
    results = dict(config={**cfg, "fused_modconv": args.fused_modconv, "iters": args.iters, "cycles": args.cycles},
                   machine=dict(platform=platform.platform(), jax=jax.__version__, backend=jax.default_backend(),
                                device_kind=jax.devices()[0].device_kind, cores=len(os.sched_getaffinity(0))),
                   ours={}, official=None)

    if off is not None:
        img_err, logit_err = sanity(off, cfg, fused)
        print(f"sanity (tiny 16x16 G/D, official weights copied into ours): rel-L2 image {img_err:.2e}, "
              f"D logits {logit_err:.2e}", flush=True)
        results["official"] = dict(flavor=off.flavor, path=off.path, torch=off.torch.__version__,
                                   threads=off.torch.get_num_threads(),
                                   sanity_rel_l2=dict(image=img_err, logits=logit_err))

    # 1. G forward
    G_off, gv = None, None
    if off is not None:   # ours gets the official G's weights, so the two timed outputs can be compared
        off.torch.manual_seed(0)
        G_off = off.G(cfg)
        G = ours_G(cfg)
        z0 = jnp.zeros((1, cfg["z_dim"]))
        tmpl = jax.eval_shape(lambda: G.init({"params": jax.random.key(0)}, z0, jnp.zeros((1, 0)), noise_mode="const"))
        gv = jax.tree_util.tree_map(jnp.asarray, official_to_variables(off.state(G_off), template=tmpl))
    g, z, img = bench_g_ours(cfg, args.iters, fused, gv)
    results["ours"]["G_forward"] = g
    gflop = g["flops_per_img"] / 1e9
    print(f"G forward, ours:     compile {g['compile_s']:6.1f} s   {g['s'] * 1e3:8.1f} ms/batch  "
          f"{g['img_s']:7.2f} img/s  XLA {gflop:.3g} GFLOP/img -> {g['img_s'] * gflop:6.1f} GFLOP/s", flush=True)
    if off is not None:
        go, img_t = bench_g_official(off, cfg, args.iters, fused, z, G_off)
        go["rel_l2_vs_ours"] = rel_l2(img, img_t)
        results["official"]["G_forward"] = go
        print(f"G forward, official:                  {go['s'] * 1e3:8.1f} ms/batch  {go['img_s']:7.2f} img/s  "
              f"-> ours/official {_ratio(g['img_s'], go['img_s'])}  (same weights: rel-L2 of the images "
              f"{go['rel_l2_vs_ours']:.2e})", flush=True)
        if args.fused_modconv == "false":   # what the official G does by default in eval mode
            gd, _ = bench_g_official(off, cfg, args.iters, None, z, G_off)
            results["official"]["G_forward_own_default"] = gd
            print(f"G forward, official, its eval default (fused_modconv=True, grouped conv): "
                  f"{gd['s'] * 1e3:8.1f} ms/batch  {gd['img_s']:7.2f} img/s", flush=True)
        del G_off

    # 2. train step
    if not args.skip_train:
        t = bench_train_ours(cfg, args.iters, args.cycles)
        results["ours"]["train"] = t
        for c in t["compile"]:
            print(f"train step, ours: compile {'+'.join(c['phases'])} (first at step {c['step_index']}): "
                  f"{c['compile_s']:6.1f} s (XLA compile {c['xla_compile_s']:.1f} s: "
                  + ", ".join(f"{n} {d:.1f}" for n, d in c["programs"] if d >= 0.05) + "); "
                  f"first call {c['first_call_s']:.1f} s", flush=True)
        print(f"train step, ours:     plain (Gmain+Dmain) {t['plain_s'] * 1e3:8.1f} ms  {t['plain_img_s']:7.2f} "
              f"img/s;  amortised over {t['cycle']} steps {t['amortised_s'] * 1e3:8.1f} ms  "
              f"{t['amortised_img_s']:7.2f} img/s", flush=True)
        print("  by due phases (median): " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in t["by_phases_s"].items()))
        if off is not None:
            to = bench_train_official(off, cfg, args.iters, args.cycles)
            results["official"]["train"] = to
            print(f"train step, official: plain (Gmain+Dmain) {to['plain_s'] * 1e3:8.1f} ms  {to['plain_img_s']:7.2f} "
                  f"img/s;  amortised over 16 steps {to['amortised_s'] * 1e3:8.1f} ms  {to['amortised_img_s']:7.2f} "
                  f"img/s  (first step {to['first_call_s']:.1f} s)", flush=True)

    # table
    o = results["official"] or {}
    rows = [("G forward", g["img_s"], (o.get("G_forward") or {}).get("img_s"), f"{g['compile_s']:.1f} s")]
    if "train" in results["ours"]:
        t, to = results["ours"]["train"], o.get("train") or {}
        comp = sum(c["compile_s"] for c in t["compile"])
        rows += [("train step, plain Gmain+Dmain", t["plain_img_s"], to.get("plain_img_s"),
                  f"{sum(c['compile_s'] for c in t['compile'][:1]):.1f} s"),
                 ("train step, amortised (16 steps)", t["amortised_img_s"], to.get("amortised_img_s"),
                  f"{comp:.1f} s (all phases)")]
    print()
    print(f"| {cfg['resolution']}x{cfg['resolution']}, batch {cfg['batch']}, cbase {cfg['channel_base']}, "
          f"cmax {cfg['channel_max']} | ours img/s | official img/s | ours/official | ours compile |")
    print("|---|---:|---:|---:|---:|")
    for name, a, b, comp in rows:
        print(f"| {name} | {a:.2f} | {'-' if b is None else f'{b:.2f}'} | {_ratio(a, b)} | {comp} |")
    flops = g["flops_per_img"]
    line = (f"G forward: XLA counts {flops / 1e9:.4g} GFLOP/image (2 FLOP per multiply-add); achieved "
            f"{g['img_s'] * flops / 1e9:.1f} GFLOP/s (ours)")
    if o.get("G_forward"):
        line += f", {o['G_forward']['img_s'] * flops / 1e9:.1f} GFLOP/s (official, same count)"
    print(line)
    if off is None:
        print("(" + load_official(None, 1)[1].split("; ", 1)[1] + ")")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=float)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
