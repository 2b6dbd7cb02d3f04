"""StyleGAN3 throughput on the current JAX devices: G forward (with a per-layer breakdown of where
its time goes) and one G+D training step, for configs T and R, and, optionally, the official
PyTorch code on the same shapes beside it.

    python benchmarks/stylegan3.py [--cfg t|r|both] [--resolution 64] [--channel-base 32768]
        [--channel-max 512] [--batch 4] [--iters 5] [--cycles 1] [--filtered-lrelu-impl xla|pallas|auto]
        [--official PATH] [--official-iters 2] [--skip-official-train] [--skip-train] [--json PATH]

Defaults: a 64x64 StyleGAN3 in float32 as NVlabs' train.py --cfg=stylegan3-t|r builds it:
z_dim = w_dim = 512, a 2-layer mapping network, channel_base 32768, channel_max 512,
num_fp16_res=0, conv_clamp=256, magnitude_ema_beta = 0.5 ** (batch / 20k) (train.py's value),
batch 4, c_dim 0. Config R is conv_kernel=1, use_radial_filters=True and G's channel_base and
channel_max doubled (65536 / 1024 by default), as train.py does; D keeps the given values. For
each config (--cfg both runs T, then R):

1. G forward (truncation_psi=1), `gigajax.models.stylegan3.Generator` under `jax.jit`: compile
   time (lowering + XLA compile), then the median of --iters calls after one warm-up call. XLA's
   cost analysis of the compiled program gives the FLOPs per image (2 FLOP per multiply-add) and
   so the GFLOP/s achieved.
2. Where the G forward's time goes. For every layer of `G.design()` (L0 .. the ToRGB layer), each
   op alone under `jax.jit` (median of --iters calls after compile and one warm-up call) on that
   layer's shapes and constants:
     modconv:        `ops.modulated_conv2d_sg3` on x `[B, in_h, in_w, in_ch]`, weight
                     `[k, k, in_ch, out_ch]`, styles `[B, in_ch]`, padding k - 1, the layer's
                     demodulation and a scalar input gain;
     filtered_lrelu: `ops.filtered_lrelu` on the modconv output `[B, in_h + k - 1, in_w + k - 1,
                     out_ch]` with the layer's bias, up/down filters, factors, padding, gain, slope
                     and clamp.
   Totals of each, and "everything else" = G forward - both totals (mapping network, the input
   layer's Fourier features, the affines, magnitude normalisation, output scale, and whatever
   XLA gains or loses by running the ops inside one program; it can come out negative, as it does
   at toy sizes). Each op timed alone pays one jit dispatch; the time of a near-empty jitted call
   is printed beside the table.
   --filtered-lrelu-impl sets the GIGAJAX_FILTERED_LRELU environment variable (read at trace
   time by `gigajax.ops.filtered_lrelu`) for everything this script traces; 'pallas' on CPU runs
   the kernels in Pallas interpret mode (slow; for checking, not for timing). Without the flag the
   environment is left as it is; the implementation in use is printed.
3. One training step through the trainer's own step (`StyleGAN3Recipe` with cfg stylegan3-t|r +
   `jit_train_step`, one device, no augmentation, StyleGAN2 'resnet' D with the given cbase/cmax
   and conv_clamp 256, minibatch-std group min(4, batch), no path length, no style mixing, R1
   every 16 with gamma 0.0002 * resolution^2 / batch unless --r1-gamma; R also blurs D's inputs
   with blur_init_sigma 10 fading over batch * 200 / 32 kimg): (a) the plain step, Gmain + Dmain
   (median over --iters steps where Dreg is not due); (b) the amortised step: the average over
   --cycles runs of 16 consecutive steps, so that Dreg is included at its real rate. Each phase
   program compiles on first use; the compile time of each (trace + lowering + XLA compile, from
   JAX's monitoring events) is reported once.
4. With torch importable and `--official PATH` (or env GIGAJAX_NVLABS_SRC) pointing at your own
   clone of NVlabs/stylegan3, the official `training.networks_stylegan3.Generator` with the same
   arguments (imported from PATH at run time; nothing of it is part of gigajax; a one-function
   pkg_resources stand-in is installed when setuptools no longer provides it). Its random initial
   weights and buffers are copied into ours with
   `gigajax.compat.stylegan3_convert.official_to_variables` (filters checked against our design),
   so the two timed outputs can be compared: their relative L2 is printed, not asserted. Its
   forward is timed under torch.no_grad() with torch.set_num_threads(--threads): the median of
   --official-iters calls after one warm-up call (the official CPU path can take seconds per
   batch). The official custom CUDA ops fall back to their reference implementations on CPU
   (`filtered_lrelu` -> `_filtered_lrelu_ref`, upfirdn2d and bias_act likewise), and its
   modulated convolution is always the grouped convolution with per-sample weights (gigajax
   scales the activations instead). The same per-layer breakdown is timed on the official ops
   (`networks_stylegan3.modulated_conv2d`, `torch_utils.ops.filtered_lrelu.filtered_lrelu`,
   with each official layer's own filters and padding) unless --skip-official-breakdown.
   Its training step is written like the official training_loop.py for these configs: the
   official `training.loss.StyleGAN2Loss` (pl_weight 0, style_mixing_prob 0, the same r1_gamma,
   for R blur_init_sigma 10 and blur_fade_kimg batch * 200 / 32), the D of
   `training.networks_stylegan2` with the same arguments as ours, phases Gboth (G_reg_interval is
   None for StyleGAN3, and with pl_weight 0 Gboth is Gmain: Adam lr 0.0025 without the lazy
   compensation), Dmain and Dreg (every 16; lr 0.002 and betas with the lazy-regularisation
   adjustment), accumulate_gradients with cur_nimg, nan_to_num on the gradients, Adam steps and
   the G_ema update. Plain step: median of --official-iters steps without Dreg, after a first
   step with every phase and one plain warm-up step; amortised: --official-cycles (default 1)
   runs of 16 steps (0 skips it). --skip-official-train skips the official step altogether.
   Ratios printed are ours / official throughput (> 1: gigajax is faster); the issue's target is
   a G forward at least 20x faster than the official CPU path.

Run it on an otherwise idle machine. torch's OpenMP threads spin-wait at every parallel region:
with another process on the cores, the official StyleGAN2 G forward (tiny 16x16 G, batch 4) at
--threads 2 on 2 busy cores took 490 ms instead of 3-9 ms (OMP_WAIT_POLICY=PASSIVE: 8-15 ms; see
benchmarks/stylegan2.py). XLA:CPU suffers far less, so a loaded machine inflates the ratio.

Asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
import inspect
import itertools
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

try:   # run as `python benchmarks/stylegan3.py`: the repo root is not on sys.path by itself
    from benchmarks.stylegan2 import Official, _ratio, bench_train_recipe, cycle_times, rel_l2, timed
except ImportError:
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.stylegan2 import Official, _ratio, bench_train_recipe, cycle_times, rel_l2, timed

from gigajax import ops
from gigajax.compat.stylegan3_convert import design_filters, official_to_variables
from gigajax.models.stylegan3 import Generator
from gigajax.train import DataSpec
from gigajax.train.recipes.stylegan3 import StyleGAN3Recipe

CONFIGS = {"t": "stylegan3-t", "r": "stylegan3-r"}
R1_INTERVAL = 16                 # official train.py D_reg_interval (G_reg_interval is None for StyleGAN3)
GLR, DLR = 0.0025, 0.002         # official train.py defaults for --cfg=stylegan3-*
IMPL_ENV = "GIGAJAX_FILTERED_LRELU"


# --- configuration ----------------------------------------------------------------------------

def g_kwargs(cfg):
    """The Generator's constructor arguments (the official names; ours and NVlabs' take the same)."""
    r = cfg["which"] == "r"
    kw = dict(z_dim=cfg["z_dim"], c_dim=0, w_dim=cfg["w_dim"], img_resolution=cfg["resolution"], img_channels=3,
              mapping_kwargs=dict(num_layers=cfg["map_layers"]),
              channel_base=cfg["channel_base"] * (2 if r else 1), channel_max=cfg["channel_max"] * (2 if r else 1),
              num_fp16_res=0, conv_clamp=cfg["conv_clamp"], magnitude_ema_beta=cfg["magnitude_ema_beta"])
    if r:
        kw.update(conv_kernel=1, use_radial_filters=True)
    return kw


def describe(cfg):
    kw = g_kwargs(cfg)
    line = (f"config {cfg['which'].upper()} ({CONFIGS[cfg['which']]}): G channel_base={kw['channel_base']}, "
            f"channel_max={kw['channel_max']}, conv_kernel={kw.get('conv_kernel', 3)}, "
            f"use_radial_filters={kw.get('use_radial_filters', False)}")
    if cfg["which"] == "r":
        line += (f" (R: 1x1 convs, radial down filters, G's channel_base/channel_max doubled as official train.py "
                 f"does; D keeps {cfg['channel_base']}/{cfg['channel_max']}; D input blur sigma 10 fading over "
                 f"{cfg['batch'] * 200 / 32:g} kimg)")
    return line


def filtered_lrelu_impl_info(requested):
    """(supported, line): apply --filtered-lrelu-impl through the environment if filtered_lrelu
    knows `impl`, and say which implementation a call with concrete filters resolves to."""
    fl_mod = importlib.import_module("gigajax.ops.filtered_lrelu")
    supported = "impl" in inspect.signature(fl_mod.filtered_lrelu).parameters
    if requested is not None:
        if not supported:
            return False, (f"filtered_lrelu: --filtered-lrelu-impl {requested} ignored (this gigajax's "
                           f"filtered_lrelu has no impl argument)")
        os.environ[IMPL_ENV] = requested
    if not supported:
        return False, "filtered_lrelu: the XLA path (no impl argument in this gigajax)"
    resolve = getattr(fl_mod, "resolve_impl", None)
    env = os.environ.get(IMPL_ENV)
    how = f"{IMPL_ENV}={env!r}" if env is not None else f"{IMPL_ENV} unset"
    if resolve is None:
        return True, f"filtered_lrelu: impl 'auto' ({how})"
    f = np.ones([4], np.float32) / 4
    resolved = resolve("auto", f, f)
    extra = " (Pallas interpret mode on CPU: slow)" if resolved == "pallas" and jax.default_backend() == "cpu" else ""
    return True, f"filtered_lrelu: {resolved}{extra} ({how})"


# --- the official code (optional) -------------------------------------------------------------

class Official3(Official):
    """benchmarks/stylegan2.py's `Official` (pkg_resources shim, networks_stylegan2, loss) plus the
    StyleGAN3 generator and the official filtered_lrelu op."""

    def __init__(self, path, threads):
        super().__init__(path, threads)
        self.nets3 = importlib.import_module("training.networks_stylegan3")
        self.fl = importlib.import_module("torch_utils.ops.filtered_lrelu")

    def G(self, cfg):
        return self.nets3.Generator(**g_kwargs(cfg))

    def D(self, cfg):
        return self.nets.Discriminator(c_dim=0, img_resolution=cfg["resolution"], img_channels=3,
                                       architecture="resnet", channel_base=cfg["channel_base"],
                                       channel_max=cfg["channel_max"], num_fp16_res=0, conv_clamp=cfg["conv_clamp"],
                                       block_kwargs={}, mapping_kwargs={},
                                       epilogue_kwargs=dict(mbstd_group_size=cfg["mbstd_group"]))


def load_official(path, threads):
    """(Official3 or None, a line saying what happened)."""
    path = path or os.environ.get("GIGAJAX_NVLABS_SRC")
    how = ("pass --official PATH (or set GIGAJAX_NVLABS_SRC) to your own clone of NVlabs/stylegan3, with torch "
           "installed, to time the official code beside it")
    if not path:
        return None, "official code: not compared; " + how
    try:
        import torch  # noqa: F401
    except ImportError:
        return None, f"official code: not compared, torch is not importable; {how}"
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(os.path.join(path, "training", "networks_stylegan3.py")):
        return None, f"official code: not compared, {path} has no training/networks_stylegan3.py; {how}"
    off = Official3(path, threads)
    import torch
    line = (f"official code: NVlabs/stylegan3 from {path}, torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads" + (" (pkg_resources missing: a parse_version shim was installed)" if off.shimmed else ""))
    return off, line


# --- 1. G forward -----------------------------------------------------------------------------

def compile_and_cost(fn, *args):
    """(compiled, seconds to lower + compile, XLA's FLOP count of one call)."""
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return compiled, compile_s, float((cost or {}).get("flops", float("nan")))


def bench_g_ours(cfg, iters, variables=None):
    G = Generator.create(**g_kwargs(cfg))
    B = cfg["batch"]
    z = jnp.asarray(np.random.RandomState(0).randn(B, cfg["z_dim"]).astype(np.float32))
    c = jnp.zeros((B, 0), jnp.float32)
    if variables is None:
        variables = jax.jit(lambda k: G.init({"params": k}, z, c))(jax.random.key(0))
    compiled, compile_s, flops = compile_and_cost(lambda v, z: G.apply(v, z, c, truncation_psi=1), variables, z)
    out = jax.block_until_ready(compiled(variables, z))
    dt, _ = timed(lambda: jax.block_until_ready(compiled(variables, z)), iters)
    return (dict(compile_s=compile_s, s=dt, img_s=B / dt, flops_per_img=flops / B), np.asarray(z), np.asarray(out))


def bench_g_official(off, G, z, iters):
    torch = off.torch
    G = G.eval().requires_grad_(False)
    zt = torch.from_numpy(np.array(z))
    c = torch.zeros([z.shape[0], 0])
    with torch.no_grad():
        t = time.perf_counter()
        out = G(zt, c, truncation_psi=1)
        first_s = time.perf_counter() - t
        dt, _ = timed(lambda: G(zt, c, truncation_psi=1), iters)
    return dict(s=dt, img_s=z.shape[0] / dt, first_call_s=first_s), out.numpy().transpose(0, 2, 3, 1)


# --- 2. where the time goes -------------------------------------------------------------------

def _layer_info(d):
    k = d.conv_kernel
    return dict(name=d.name, in_size=list(d.in_size), out_size=list(d.out_size), in_channels=d.in_channels,
                out_channels=d.out_channels, conv_kernel=k, up=d.up_factor, down=d.down_factor,
                up_taps=d.up_taps, down_taps=d.down_taps, radial=d.down_radial, padding=list(d.padding),
                fl_input=[None, d.in_size[1] + k - 1, d.in_size[0] + k - 1, d.out_channels])


def _time_compiled(compiled, args, iters):
    jax.block_until_ready(compiled(*args))     # warm-up
    dt, _ = timed(lambda: jax.block_until_ready(compiled(*args)), iters)
    return dt


def _modconv(d, x, w, s, g):
    return ops.modulated_conv2d_sg3(x, w, s, demodulate=not d.is_torgb, padding=d.conv_kernel - 1, input_gain=g)


def _filtered_lrelu(d, clamp, x, b):
    return ops.filtered_lrelu(x, d.up_filter, d.down_filter, b=b, up=d.up_factor, down=d.down_factor,
                              padding=d.padding, gain=1 if d.is_torgb else np.sqrt(2), slope=1 if d.is_torgb else 0.2,
                              clamp=clamp)


def bench_breakdown_ours(cfg, iters):
    """Per layer of G.design(): modulated_conv2d_sg3 and filtered_lrelu alone, jit, median seconds."""
    G = Generator.create(**g_kwargs(cfg))
    B = cfg["batch"]
    rng = np.random.default_rng(0)
    rows = []
    for d in G.design().layers:
        k = d.conv_kernel
        in_w, in_h = d.in_size
        x = jnp.asarray(rng.standard_normal((B, in_h, in_w, d.in_channels), np.float32))
        w = jnp.asarray(rng.standard_normal((k, k, d.in_channels, d.out_channels), np.float32))
        s = jnp.asarray(1 + 0.1 * rng.standard_normal((B, d.in_channels), np.float32))
        g = jnp.float32(1.0)
        mc, mc_compile, mc_flops = compile_and_cost(functools.partial(_modconv, d), x, w, s, g)
        mc_s = _time_compiled(mc, (x, w, s, g), iters)
        xf = jnp.asarray(rng.standard_normal((B, in_h + k - 1, in_w + k - 1, d.out_channels), np.float32))
        b = jnp.asarray(0.1 * rng.standard_normal((d.out_channels,), np.float32))
        fl, fl_compile, fl_flops = compile_and_cost(functools.partial(_filtered_lrelu, d, cfg["conv_clamp"]), xf, b)
        fl_s = _time_compiled(fl, (xf, b), iters)
        rows.append(dict(_layer_info(d), modconv_s=mc_s, modconv_compile_s=mc_compile, modconv_flops=mc_flops,
                         filtered_lrelu_s=fl_s, filtered_lrelu_compile_s=fl_compile, filtered_lrelu_flops=fl_flops))
        del x, w, s, xf, b, mc, fl
    return rows


def bench_breakdown_official(off, G_off, cfg, iters):
    """The same per-layer split on the official ops, with each official layer's own constants."""
    torch = off.torch
    B = cfg["batch"]
    gen = torch.Generator().manual_seed(0)
    rows = []
    syn = G_off.synthesis
    with torch.no_grad():
        for name in syn.layer_names:
            L = getattr(syn, name)
            k = int(L.conv_kernel)
            in_w, in_h = (int(v) for v in L.in_size)
            x = torch.randn([B, L.in_channels, in_h, in_w], generator=gen)
            s = 1 + 0.1 * torch.randn([B, L.in_channels], generator=gen)
            gain = L.magnitude_ema.rsqrt()

            def mc():
                return off.nets3.modulated_conv2d(x=x, w=L.weight, s=s, padding=k - 1, demodulate=not L.is_torgb,
                                                  input_gain=gain)
            xf = torch.randn([B, L.out_channels, in_h + k - 1, in_w + k - 1], generator=gen)

            def fl():
                return off.fl.filtered_lrelu(x=xf, fu=L.up_filter, fd=L.down_filter, b=L.bias, up=L.up_factor,
                                             down=L.down_factor, padding=L.padding,
                                             gain=1 if L.is_torgb else np.sqrt(2), slope=1 if L.is_torgb else 0.2,
                                             clamp=L.conv_clamp)
            mc()
            mc_s, _ = timed(mc, iters)
            fl()
            fl_s, _ = timed(fl, iters)
            rows.append(dict(name=name, modconv_s=mc_s, filtered_lrelu_s=fl_s))
    return rows


def dispatch_overhead(iters):
    """Median seconds of a jitted call that does almost nothing: each op timed alone pays it once."""
    f = jax.jit(lambda x: x + 1)
    x = jnp.zeros((), jnp.float32)
    jax.block_until_ready(f(x))
    return timed(lambda: jax.block_until_ready(f(x)), max(iters, 20))[0]


def summarise(rows, g_s):
    mc = sum(r["modconv_s"] for r in rows)
    fl = sum(r["filtered_lrelu_s"] for r in rows)
    return dict(G_forward_s=g_s, modconv_s=mc, filtered_lrelu_s=fl, everything_else_s=g_s - mc - fl)


def print_breakdown(rows, totals, off_rows=None, off_totals=None):
    def ms(v):
        return "-" if v is None else f"{v * 1e3:.2f}"

    def gfs(flops, s):
        return f"{flops / s / 1e9:.1f}" if s and np.isfinite(flops) else "-"

    head = ("| layer | in -> out | ch in -> out | k | up/down (taps) | filtered_lrelu input | modconv ms | GFLOP/s | "
            "filtered_lrelu ms | GFLOP/s |")
    sep = "|---|---|---|---:|---|---|---:|---:|---:|---:|"
    if off_rows is not None:
        head += " official modconv ms | official filtered_lrelu ms |"
        sep += "---:|---:|"
    print(head)
    print(sep)
    off_by = {r["name"]: r for r in (off_rows or [])}
    for r in rows:
        taps = f"{r['up']}/{r['down']} ({r['up_taps']}/{r['down_taps']}{', radial' if r['radial'] else ''})"
        fin = "x".join(str(v) for v in r["fl_input"][1:])
        line = (f"| {r['name']} | {r['in_size'][0]} -> {r['out_size'][0]} | {r['in_channels']} -> "
                f"{r['out_channels']} | {r['conv_kernel']} | {taps} | {fin} | {ms(r['modconv_s'])} | "
                f"{gfs(r['modconv_flops'], r['modconv_s'])} | {ms(r['filtered_lrelu_s'])} | "
                f"{gfs(r['filtered_lrelu_flops'], r['filtered_lrelu_s'])} |")
        if off_rows is not None:
            o = off_by.get(r["name"], {})
            line += f" {ms(o.get('modconv_s'))} | {ms(o.get('filtered_lrelu_s'))} |"
        print(line)

    def share(t, k):
        return f"{t[k] * 1e3:.1f} ms ({100 * t[k] / t['G_forward_s']:.0f}%)"
    for who, t in [("ours", totals), ("official", off_totals)]:
        if t is None:
            continue
        print(f"  {who}: G forward {t['G_forward_s'] * 1e3:.1f} ms = filtered_lrelu {share(t, 'filtered_lrelu_s')} "
              f"+ modconv {share(t, 'modconv_s')} + everything else {share(t, 'everything_else_s')}")


# --- 3. training step -------------------------------------------------------------------------

def bench_train_ours(cfg, iters, cycles):
    B, res = cfg["batch"], cfg["resolution"]
    recipe = StyleGAN3Recipe(DataSpec(res, 3, 0), cfg=CONFIGS[cfg["which"]], batch_size=B, z_dim=cfg["z_dim"],
                             w_dim=cfg["w_dim"], map_layers=cfg["map_layers"], cbase=cfg["channel_base"],
                             cmax=cfg["channel_max"], d_architecture="resnet", conv_clamp=cfg["conv_clamp"],
                             mbstd_group=cfg["mbstd_group"], r1_gamma=cfg["r1_gamma"], r1_interval=R1_INTERVAL,
                             glr=GLR, dlr=DLR, augment="noaug", magnitude_ema_beta=cfg["magnitude_ema_beta"])
    out = bench_train_recipe(recipe, B, res, iters, cycles)
    return dict(phases=[p.name for p in recipe.phases], r1_gamma=recipe.r1_gamma,
                blur_init_sigma=recipe.blur_init_sigma, blur_fade_kimg=recipe.blur_fade_kimg, **out)


def bench_train_official(off, cfg, iters, cycles):
    torch = off.torch
    B, res = cfg["batch"], cfg["resolution"]
    r = cfg["which"] == "r"
    torch.manual_seed(0)
    G = off.G(cfg).train().requires_grad_(False)
    D = off.D(cfg).train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    loss = off.loss.StyleGAN2Loss(device=torch.device("cpu"), G=G, D=D, r1_gamma=cfg["r1_gamma"],
                                  style_mixing_prob=0, pl_weight=0, blur_init_sigma=10 if r else 0,
                                  blur_fade_kimg=B * 200 / 32 if r else 0)
    # As training_loop.py builds them: G_reg_interval None -> one 'Gboth' phase without the lazy
    # compensation; D lazy (R1 every 16).
    phases = [dict(name="Gboth", module=G, interval=1,
                   opt=torch.optim.Adam(G.parameters(), lr=GLR, betas=[0.0, 0.99], eps=1e-8))]
    rr = R1_INTERVAL / (R1_INTERVAL + 1)
    d_opt = torch.optim.Adam(D.parameters(), lr=DLR * rr, betas=[0 ** rr, 0.99 ** rr], eps=1e-8)
    phases += [dict(name="Dmain", module=D, opt=d_opt, interval=1),
               dict(name="Dreg", module=D, opt=d_opt, interval=R1_INTERVAL)]
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
            loss.accumulate_gradients(phase=phase["name"], real_img=real, real_c=c, gen_z=gen_z, gen_c=c,
                                      gain=phase["interval"], cur_nimg=cur_nimg)
            phase["module"].requires_grad_(False)
            ps = [p for p in phase["module"].parameters() if p.numel() > 0 and p.grad is not None]
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

    t = time.perf_counter()
    one(0)                      # warm-up: every phase once
    first_s = time.perf_counter() - t
    plain = (i for i in itertools.count(1) if i % R1_INTERVAL)
    one(next(plain))
    plain_s, _ = timed(lambda: one(next(plain)), iters)
    out = dict(plain_s=plain_s, plain_img_s=B / plain_s, amortised_s=None, amortised_img_s=None, first_call_s=first_s,
               cycles=cycles)
    if cycles > 0:
        _, amort = cycle_times(one, R1_INTERVAL, cycles)
        out.update(amortised_s=amort, amortised_img_s=B / amort)
    return out


# --- main -------------------------------------------------------------------------------------

def run_config(cfg, args, off):
    res = dict(ours={}, official=None)
    print(f"\n=== {describe(cfg)}", flush=True)

    # 1. G forward
    G_off, gv = None, None
    if off is not None:   # ours gets the official G's weights, so the two timed outputs can be compared
        off.torch.manual_seed(0)
        G_off = off.G(cfg)
        G = Generator.create(**g_kwargs(cfg))
        z0, c0 = jnp.zeros((1, cfg["z_dim"])), jnp.zeros((1, 0))
        tmpl = jax.eval_shape(lambda: G.init({"params": jax.random.key(0)}, z0, c0))
        gv = jax.tree_util.tree_map(jnp.asarray, official_to_variables(
            off.state(G_off), filters=design_filters(G.design()), template=tmpl))
    g, z, img = bench_g_ours(cfg, args.iters, gv)
    res["ours"]["G_forward"] = g
    gflop = g["flops_per_img"] / 1e9
    print(f"G forward, ours:     compile {g['compile_s']:6.1f} s   {g['s'] * 1e3:8.1f} ms/batch  "
          f"{g['img_s']:7.2f} img/s  XLA {gflop:.3g} GFLOP/img -> {g['img_s'] * gflop:6.1f} GFLOP/s", flush=True)
    if off is not None:
        go, img_t = bench_g_official(off, G_off, z, args.official_iters)
        go["rel_l2_vs_ours"] = rel_l2(img, img_t)
        res["official"] = dict(G_forward=go)
        print(f"G forward, official:                  {go['s'] * 1e3:8.1f} ms/batch  {go['img_s']:7.2f} img/s  "
              f"-> ours/official {_ratio(g['img_s'], go['img_s'])} (target >= 20x)  (same weights: rel-L2 of "
              f"the images {go['rel_l2_vs_ours']:.2e})", flush=True)

    # 2. breakdown
    rows = bench_breakdown_ours(cfg, args.iters)
    totals = summarise(rows, g["s"])
    overhead = dispatch_overhead(args.iters)
    res["ours"]["breakdown"] = dict(layers=rows, totals=totals, dispatch_overhead_s=overhead)
    off_rows = off_totals = None
    if off is not None and not args.skip_official_breakdown:
        off_rows = bench_breakdown_official(off, G_off, cfg, args.official_iters)
        off_totals = summarise(off_rows, res["official"]["G_forward"]["s"])
        res["official"]["breakdown"] = dict(layers=off_rows, totals=off_totals)
    print(f"where the G forward's time goes (each op alone, median ms per call of batch {cfg['batch']}):")
    print_breakdown(rows, totals, off_rows, off_totals)
    print(f"  (each op alone pays one jit dispatch, about {overhead * 1e3:.3f} ms here, "
          f"{2 * len(rows) * overhead * 1e3:.2f} ms over the {2 * len(rows)} calls; the G forward pays one)")
    del G_off

    # 3. train step
    if not args.skip_train:
        t = bench_train_ours(cfg, args.iters, args.cycles)
        res["ours"]["train"] = t
        print(f"train step, ours: phases {'/'.join(t['phases'])}, r1_gamma {t['r1_gamma']:.4g}"
              + (f", D blur sigma {t['blur_init_sigma']:g} fading over {t['blur_fade_kimg']:g} kimg"
                 if t["blur_init_sigma"] else ""))
        for ci in t["compile"]:
            print(f"train step, ours: compile {'+'.join(ci['phases'])} (first at step {ci['step_index']}): "
                  f"{ci['compile_s']:6.1f} s (XLA compile {ci['xla_compile_s']:.1f} s: "
                  + ", ".join(f"{n} {d:.1f}" for n, d in ci["programs"] if d >= 0.05) + "); "
                  f"first call {ci['first_call_s']:.1f} s", flush=True)
        print(f"train step, ours:     plain (Gmain+Dmain) {t['plain_s'] * 1e3:8.1f} ms  {t['plain_img_s']:7.2f} "
              f"img/s;  amortised over {t['cycle']} steps {t['amortised_s'] * 1e3:8.1f} ms  "
              f"{t['amortised_img_s']:7.2f} img/s", flush=True)
        print("  by due phases (median): " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in t["by_phases_s"].items()))
        if off is not None and not args.skip_official_train:
            to = bench_train_official(off, cfg, args.official_iters, args.official_cycles)
            res["official"]["train"] = to
            am = ("skipped (--official-cycles 0)" if to["amortised_s"] is None else
                  f"{to['amortised_s'] * 1e3:8.1f} ms  {to['amortised_img_s']:7.2f} img/s")
            print(f"train step, official: plain (Gboth+Dmain) {to['plain_s'] * 1e3:8.1f} ms  "
                  f"{to['plain_img_s']:7.2f} img/s;  amortised over 16 steps {am}  "
                  f"(first step {to['first_call_s']:.1f} s)", flush=True)
    return res


def print_table(cfg_name, cfg, res):
    g = res["ours"]["G_forward"]
    o = res["official"] or {}
    rows = [("G forward", g["img_s"], (o.get("G_forward") or {}).get("img_s"), f"{g['compile_s']:.1f} s")]
    if "train" in res["ours"]:
        t, to = res["ours"]["train"], o.get("train") or {}
        comp = sum(c["compile_s"] for c in t["compile"])
        rows += [("train step, plain Gmain+Dmain", t["plain_img_s"], to.get("plain_img_s"),
                  f"{sum(c['compile_s'] for c in t['compile'][:1]):.1f} s"),
                 ("train step, amortised (16 steps)", t["amortised_img_s"], to.get("amortised_img_s"),
                  f"{comp:.1f} s (all phases)")]
    print(f"| {cfg_name.upper()} {cfg['resolution']}x{cfg['resolution']}, batch {cfg['batch']}, G cbase "
          f"{g_kwargs(cfg)['channel_base']}, cmax {g_kwargs(cfg)['channel_max']} | ours img/s | official img/s | "
          f"ours/official | ours compile |")
    print("|---|---:|---:|---:|---:|")
    for name, a, b, comp in rows:
        print(f"| {name} | {a:.2f} | {'-' if b is None else f'{b:.2f}'} | {_ratio(a, b)} | {comp} |")
    flops = g["flops_per_img"]
    line = (f"G forward: XLA counts {flops / 1e9:.4g} GFLOP/image (2 FLOP per multiply-add); achieved "
            f"{g['img_s'] * flops / 1e9:.1f} GFLOP/s (ours)")
    if o.get("G_forward"):
        line += f", {o['G_forward']['img_s'] * flops / 1e9:.1f} GFLOP/s (official, same count)"
        ratio = g["img_s"] / o["G_forward"]["img_s"]
        line += f"; ours/official {ratio:.1f}x: the 20x target is {'met' if ratio >= 20 else 'not met'}"
    print(line)
    tot = res["ours"]["breakdown"]["totals"]
    print(f"G forward split (ours): filtered_lrelu {tot['filtered_lrelu_s'] * 1e3:.1f} ms, modconv "
          f"{tot['modconv_s'] * 1e3:.1f} ms, everything else {tot['everything_else_s'] * 1e3:.1f} ms of "
          f"{tot['G_forward_s'] * 1e3:.1f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfg", default="both", choices=["t", "r", "both"])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--channel-base", type=int, default=32768, help="before R's doubling (as train.py --cbase)")
    ap.add_argument("--channel-max", type=int, default=512, help="before R's doubling (as train.py --cmax)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=5, help="timed calls (G forward, ops, plain train step) after warm-up")
    ap.add_argument("--cycles", type=int, default=1, help="16-step cycles averaged for the amortised train step")
    ap.add_argument("--z-dim", type=int, default=512)
    ap.add_argument("--w-dim", type=int, default=512)
    ap.add_argument("--map-layers", type=int, default=2)
    ap.add_argument("--conv-clamp", type=float, default=256)
    ap.add_argument("--magnitude-ema-beta", type=float, default=None,
                    help="default: official train.py's 0.5 ** (batch / 20000)")
    ap.add_argument("--mbstd-group", type=int, default=4, help="D's minibatch-std group (capped at the batch)")
    ap.add_argument("--r1-gamma", type=float, default=None, help="default: 0.0002 * resolution**2 / batch")
    ap.add_argument("--filtered-lrelu-impl", default=None, choices=["xla", "pallas", "auto"],
                    help=f"sets {IMPL_ENV} for this process (default: leave the environment as it is)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="torch threads for the official code (default: all cores, as XLA:CPU uses)")
    ap.add_argument("--official", default=None, help="your clone of NVlabs/stylegan3")
    ap.add_argument("--official-iters", type=int, default=2,
                    help="timed official calls/steps after warm-up (its CPU path is slow)")
    ap.add_argument("--official-cycles", type=int, default=1,
                    help="16-step cycles of the official train step for the amortised number (0 skips)")
    ap.add_argument("--skip-official-breakdown", action="store_true")
    ap.add_argument("--skip-official-train", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args()

    B = args.batch
    base = dict(resolution=args.resolution, channel_base=args.channel_base, channel_max=args.channel_max, batch=B,
                z_dim=args.z_dim, w_dim=args.w_dim, map_layers=args.map_layers,
                conv_clamp=None if args.conv_clamp <= 0 else args.conv_clamp,
                magnitude_ema_beta=(0.5 ** (B / 20e3) if args.magnitude_ema_beta is None
                                    else args.magnitude_ema_beta),
                mbstd_group=min(args.mbstd_group, B),
                r1_gamma=0.0002 * args.resolution ** 2 / B if args.r1_gamma is None else args.r1_gamma)
    print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()}), jax "
          f"{jax.__version__}, {len(os.sched_getaffinity(0))} cores visible")
    print("config: " + ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in base.items())
          + ", float32, c_dim=0, num_fp16_res=0, D 'resnet'")
    _, impl_line = filtered_lrelu_impl_info(args.filtered_lrelu_impl)
    print(impl_line)
    off, line = load_official(args.official, args.threads)
    print(line, flush=True)
    results = dict(config={**base, "cfg": args.cfg, "iters": args.iters, "cycles": args.cycles,
                           "official_iters": args.official_iters, "official_cycles": args.official_cycles,
                           "filtered_lrelu": impl_line},
                   machine=dict(platform=platform.platform(), jax=jax.__version__, backend=jax.default_backend(),
                                device_kind=jax.devices()[0].device_kind, cores=len(os.sched_getaffinity(0))),
                   official=None if off is None else dict(path=off.path, torch=off.torch.__version__,
                                                          threads=off.torch.get_num_threads()),
                   configs={})

    names = ["t", "r"] if args.cfg == "both" else [args.cfg]
    for name in names:
        cfg = {**base, "which": name}
        results["configs"][name] = dict(G_kwargs={k: v for k, v in g_kwargs(cfg).items()},
                                        **run_config(cfg, args, off))

    print()
    for name in names:
        print_table(name, {**base, "which": name}, results["configs"][name])
        print()
    if off is None:
        print("(" + load_official(None, 1)[1].split("; ", 1)[1] + ")")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=float)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
