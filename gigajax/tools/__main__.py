"""python -m gigajax.tools <command> --network RUN_DIR_OR_PKL --outdir DIR [options]

Commands (NVlabs' script each follows in brackets):
  generate         one PNG per seed: OUTDIR/seed0000.png ...                 [gen_images.py]
  truncation-grid  rows = seeds, columns = psi values: OUTDIR/truncation.png
  style-mixing     row seeds x column seeds, styles from the columns: OUTDIR/style_mixing.png
                                                                             [style_mixing.py]
  interpolate      latent walk through keyframe seeds: OUTDIR/interpolation.gif  [gen_video.py]
  project          fit W (and the noise) to an image: OUTDIR/{target,proj}.png, projected_w.npz
                   (and proj.gif with --save-gif)                            [projector.py]

--network is a gigajax training run (the --workdir of `python -m experiments.<name>`; its newest
checkpoint's G_ema) or an NVlabs .pkl. Seeds: comma-separated integers and inclusive ranges,
'0-3,7'; seed s is np.random.RandomState(s).randn(z_dim), as in NVlabs' tools.
"""

from __future__ import annotations

import argparse
import os
import sys

from gigajax.tools.sampler import NOISE_MODES, parse_range


def _seeds(text: str) -> list[int]:
    try:
        seeds = parse_range(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def _styles(text: str) -> list[int]:
    try:
        return parse_range(text, "styles")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. '1,0.7,0.5,0'") from None
    if not values:
        raise argparse.ArgumentTypeError("no values given")
    return values


def _grid(text: str) -> tuple[int, int]:
    import re
    m = re.fullmatch(r"\s*(\d+)\s*[x,]\s*(\d+)\s*", text)
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WxH (columns x rows), e.g. '2x1'")
    return int(m[1]), int(m[2])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gigajax.tools", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--network", required=True, metavar="PATH",
                        help="a gigajax training run directory or an NVlabs .pkl")
    common.add_argument("--outdir", required=True, metavar="DIR", help="where to write the outputs")
    common.add_argument("--experiment", default=None,
                        help="for run directories: the experiments.<name> module that trained it (default: the "
                             "run's saved config, else stylegan2)")
    common.add_argument("--step", type=int, default=None, help="for run directories: a checkpoint step "
                                                               "(default: the newest)")
    common.add_argument("--class", dest="class_idx", type=int, default=None,
                        help="class label (conditional generators only)")

    def noise(p):
        p.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="per-pixel noise (default const)")

    def trunc(p, cutoff=True):
        p.add_argument("--trunc", dest="truncation_psi", type=float, default=1.0, help="truncation psi (default 1)")
        if cutoff:
            p.add_argument("--trunc-cutoff", dest="truncation_cutoff", type=int, default=None,
                           help="truncate only the first N ws (default: all)")

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("generate", parents=[common], help="one PNG per seed")
    p.add_argument("--seeds", type=_seeds, required=True, help="e.g. '0-3,7'")
    trunc(p)
    noise(p)
    p = sub.add_parser("truncation-grid", parents=[common], help="seeds x psi grid")
    p.add_argument("--seeds", type=_seeds, required=True, help="one row per seed, e.g. '0-5'")
    p.add_argument("--psis", type=_floats, default=[1.0, 0.7, 0.5, 0.0], help="one column per psi "
                                                                             "(default 1,0.7,0.5,0)")
    p.add_argument("--trunc-cutoff", dest="truncation_cutoff", type=int, default=None,
                   help="truncate only the first N ws (default: all)")
    noise(p)
    p = sub.add_parser("style-mixing", parents=[common], help="style-mixing grid")
    p.add_argument("--rows", dest="row_seeds", type=_seeds, required=True,
                   help="row seeds (they give every style but --styles)")
    p.add_argument("--cols", dest="col_seeds", type=_seeds, required=True, help="column seeds (give --styles)")
    p.add_argument("--styles", dest="col_styles", type=_styles, default=[0, 1, 2, 3, 4, 5, 6],
                   help="ws indices taken from the column seeds, clipped to num_ws (default 0-6)")
    trunc(p, cutoff=False)
    noise(p)
    p = sub.add_parser("interpolate", parents=[common], help="latent interpolation GIF")
    p.add_argument("--seeds", type=_seeds, required=True, help="keyframe seeds; with --grid, split into "
                                                               "cols*rows consecutive runs")
    p.add_argument("--frames", type=int, default=30, help="frames per transition (default 30)")
    p.add_argument("--space", choices=("w", "z"), default="w", help="w: linear in W (default); z: slerp in Z")
    p.add_argument("--grid", type=_grid, default=(1, 1), help="WxH sequences side by side (default 1x1)")
    p.add_argument("--loop", action="store_true", help="return to the first keyframe at the end")
    p.add_argument("--fps", type=float, default=30.0, help="GIF frame rate (default 30)")
    trunc(p, cutoff=False)
    noise(p)
    p = sub.add_parser("project", parents=[common], help="project an image into W")
    p.add_argument("--target", required=True, metavar="FILE", help="image to project (centre-cropped, resized)")
    p.add_argument("--num-steps", type=int, default=1000, help="optimisation steps (default 1000)")
    p.add_argument("--seed", type=int, default=303, help="random seed of the noise (default 303)")
    p.add_argument("--w-plus", action="store_true", help="optimise one w per layer (W+) instead of one w")
    p.add_argument("--w-avg-samples", type=int, default=10000, help="samples for w_avg / w_std (default 10000)")
    p.add_argument("--save-gif", action="store_true", help="also write proj.gif (target | projection)")
    p.add_argument("--gif-every", type=int, default=10, help="steps between GIF frames (default 10)")
    return parser


def _run(args) -> list[str]:
    """Execute one parsed command; returns the paths it wrote."""
    import numpy as np

    from gigajax.tools.network import load_generator
    from gigajax.tools.sampler import Sampler
    from gigajax.train.grid import save_grid

    G, variables, info = load_generator(args.network, experiment=args.experiment, step=args.step)
    where = f"{info['workdir']} step {info['step']}" if info["source"] == "run" else info["path"]
    print(f"Loaded {type(G).__name__} from {where}", flush=True)
    sampler = Sampler(G, variables)
    os.makedirs(args.outdir, exist_ok=True)
    out = lambda name: os.path.join(args.outdir, name)   # noqa: E731

    if args.command == "generate":
        images = sampler.generate(args.seeds, class_idx=args.class_idx, truncation_psi=args.truncation_psi,
                                  truncation_cutoff=args.truncation_cutoff, noise_mode=args.noise_mode)
        return [save_grid(img[None], 1, 1, out(f"seed{seed:04d}.png")) for seed, img in zip(args.seeds, images)]
    if args.command == "truncation-grid":
        from gigajax.tools.grids import truncation_grid
        images = truncation_grid(sampler, args.seeds, args.psis, class_idx=args.class_idx,
                                 truncation_cutoff=args.truncation_cutoff, noise_mode=args.noise_mode)
        return [save_grid(images, len(args.seeds), len(args.psis), out("truncation.png"))]
    if args.command == "style-mixing":
        from gigajax.tools.grids import style_mixing_grid
        images = style_mixing_grid(sampler, args.row_seeds, args.col_seeds, args.col_styles,
                                   truncation_psi=args.truncation_psi, class_idx=args.class_idx,
                                   noise_mode=args.noise_mode)
        return [save_grid(images, len(args.row_seeds) + 1, len(args.col_seeds) + 1, out("style_mixing.png"))]
    if args.command == "interpolate":
        from gigajax.tools.interpolate import interpolation_gif
        return [interpolation_gif(sampler, args.seeds, out("interpolation.gif"), frames_per_transition=args.frames,
                                  space=args.space, grid=args.grid, loop=args.loop,
                                  truncation_psi=args.truncation_psi, class_idx=args.class_idx, fps=args.fps,
                                  noise_mode=args.noise_mode)]
    if args.command == "project":
        from gigajax.tools.projector import load_target, project, save_projection
        if not os.path.isfile(args.target):
            raise FileNotFoundError(f"--target {args.target!r}: no such file")
        target = load_target(args.target, sampler.img_resolution, sampler.img_channels)
        result = project(sampler, target, num_steps=args.num_steps, w_avg_samples=args.w_avg_samples,
                         w_plus=args.w_plus, class_idx=args.class_idx, seed=args.seed, verbose=True)
        print(f"LPIPS {float(result.dist[0]):.4f} -> {float(result.dist[-1]):.4f}; |w| "
              f"{float(np.linalg.norm(result.ws[-1, 0])):.3f}", flush=True)
        return list(save_projection(args.outdir, sampler, result, target, gif=args.save_gif,
                                    gif_every=args.gif_every).values())
    raise AssertionError(args.command)


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.exists(args.network):
        parser.error(f"--network {args.network!r}: no such file or directory (expected a gigajax training run "
                     f"directory or an NVlabs .pkl)")
    if os.path.isfile(args.network) and (args.experiment is not None or args.step is not None):
        parser.error("--experiment and --step apply to training run directories, not to .pkl files")
    for name in ("frames", "num_steps", "gif_every", "w_avg_samples"):
        if getattr(args, name, 1) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    try:
        paths = _run(args)
    except (ValueError, FileNotFoundError) as e:
        parser.error(f"{args.command}: {e}")
    for path in paths:
        print(path, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
