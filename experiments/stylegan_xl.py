"""StyleGAN-XL (Sauer et al. 2022): class-conditional StyleGAN3 generator, projected discriminator
(frozen EfficientNet-Lite0 features, random cross-channel/cross-scale mixing, multi-scale hinge
discriminators, DiffAugment), classifier guidance and progressive growing.

    python -m experiments.stylegan_xl [--variant NAME] [--workdir DIR] [--config.KEY=VALUE ...]

`config.stages` lists (resolution, kimg) pairs. The first trains the stem; each next one grows the
previous stage's G_ema by `head_layers` (SuperresGenerator), freezing what was there, with a fresh
D. Each stage trains in WORKDIR/stage<res> (its own checkpoints, grids, logs) and ends by writing
WORKDIR/stage<res>/G_ema.npz, the next stage's stem. Re-running the command resumes wherever it
stopped, inside a stage or between two. When the last stage is done, `config.final_metric` of its
G_ema is computed against the dataset and printed.

The default variant is sized for a 2-core CPU (minutes): mnist5k with labels, stages 16 -> 32,
narrow networks, the backbone input resized to 64 instead of 224, mini-discriminators at a quarter
width, the D-input blur fading over the 6-kimg stem stage instead of 300 kimg, and classifier
guidance in the 32x32 stage by a small CNN trained once on mnist5k. At this budget its grid shows
blobs, not digits yet (benchmarks/RESULTS.md). The
other variants hold the official settings (train.py and README commands of
autonomousvision/stylegan-xl; the paper's per-stage kimg and batch sizes are not published in the
repository, so those values here are choices, marked as such).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k with labels, stages 16 -> 32, CPU-sized (about 13 minutes of training on 2 cores), ends with "
               "fid1k_full",
    "cifar10": "tfds:cifar10 with labels: the README's small-dataset recipe (cbase 16384, cmax 256, syn_layers 7, "
               "head_layers 4), stages 16 -> 32",
    "imagenet16": "an ImageNet 16x16 dataset (--config.dataset=PATH|tfds:imagenet_resized/16x16): the stem "
                  "(syn_layers 10, cbase 32768, cmax 512)",
    "imagenet32": "ImageNet stages 16 -> 32 (head_layers 7)",
    "imagenet64": "ImageNet stages 16 -> 32 -> 64",
    "imagenet128": "ImageNet stages 16 -> ... -> 128",
    "imagenet256": "ImageNet stages 16 -> ... -> 256",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    c = base_config()
    c.dataset = "mnist5k"
    c.use_labels = True
    c.batch_size = 32
    c.stages = ((16, 6.0), (32, 2.0))
    c.snapshot_kimg = 2.0
    c.log_every = 20
    c.final_metric = "fid1k_full"
    c.grid_rows, c.grid_cols = 10, 10
    c.model = ml_collections.ConfigDict(dict(
        stem_resolution=16, z_dim=64, w_dim=64, map_layers=2, cbase=1024, cmax=32, syn_layers=4, head_layers=3,
        margin_size=4, cfg="stylegan3-t", conditional=True, rand_embedding=True, class_embeddings="",
        backbones=("tf_efficientnet_lite0",), interp_size=64, proj_im_res=64, d_width_div=4, cutout_ratio=0.2,
        diffaug=True, blur_init_sigma=2.0, blur_fade_kimg=6.0, pl_weight=0.0, pl_start_kimg=1000.0,
        cls_weight=4.0, classifier="auto", classifier_path="", glr=0.0025, dlr=0.002, deit_path="",
        stem_path=""))
    if variant == "cifar10":
        c.dataset = "tfds:cifar10"
        c.batch_size = 256            # a choice: the paper's CIFAR-10 batch is not in the repository
        c.stages = ((16, 10_000.0), (32, 10_000.0))
        c.snapshot_kimg = 200.0
        c.model.update(z_dim=64, w_dim=512, cbase=16384, cmax=256, syn_layers=7, head_layers=4, margin_size=10,
                       rand_embedding=False, interp_size=0, proj_im_res=256, d_width_div=1, pl_weight=2.0,
                       blur_fade_kimg=300.0, cls_weight=0.0,
                       backbones=("deit_base_distilled_patch16_224", "tf_efficientnet_lite0"))
    elif variant.startswith("imagenet"):
        res = int(variant[len("imagenet"):])
        c.dataset = f"imagenet{res}.zip"
        c.batch_size = 2048 if res <= 64 else 256   # a choice: 2048 at 16-64 per a paraphrase of the paper
        c.xflip = True
        c.stages = tuple((r, 10_000.0) for r in (16, 32, 64, 128, 256) if r <= res)
        c.snapshot_kimg = 200.0
        c.model.update(z_dim=64, w_dim=512, cbase=32768, cmax=512, syn_layers=10, head_layers=7, margin_size=10,
                       rand_embedding=False, interp_size=0, proj_im_res=256, d_width_div=1, pl_weight=2.0,
                       blur_fade_kimg=300.0, cls_weight=0.0, classifier="deit_small_distilled_patch16_224",
                       backbones=("deit_base_distilled_patch16_224", "tf_efficientnet_lite0"))
    c.total_kimg = float(sum(k for _, k in c.stages))
    return c


# --- building one stage --------------------------------------------------------------------------

def build(config, spec):
    """The StyleGAN-XL recipe of one stage (config.resolution); see `stage_config`."""
    from gigajax.models.projected import register_deit
    from gigajax.train.export import load_variables
    from gigajax.train.recipes.stylegan_xl import StyleGANXLRecipe
    m = dict(config.model)
    for name in m.pop("backbones"):
        if name.startswith("deit") or name.startswith("vit"):
            if not m["deit_path"]:
                raise ValueError(f"backbone {name!r} needs its timm weights: --config.model.deit_path=FILE "
                                 f"(a .pth/.safetensors state dict of timm's {name})")
            register_deit(m["deit_path"], name)
    backbones = tuple(config.model.backbones)
    stem_path = m.pop("stem_path")
    m.pop("deit_path")
    stem = None
    if stem_path:
        if os.path.exists(stem_path):
            stem, _ = load_variables(stem_path)
        # A missing stem only matters for a fresh start, which run_stages never makes without it;
        # a restored run overwrites every variable (tools rebuilding a moved run directory).
    m["class_embeddings"] = m["class_embeddings"] or None
    m["classifier_path"] = m["classifier_path"] or None
    m["interp_size"] = m["interp_size"] or None
    return StyleGANXLRecipe(spec, stem_variables=stem, backbones=backbones, dataset=config.dataset,
                            allow_missing_stem=bool(stem_path), **m)


def stage_config(config, index: int, workdir: Path) -> ml_collections.ConfigDict:
    """The trainer config of stage `index`: the shared keys, its resolution and kimg, the path of
    its stem, and StyleGAN-XL's EMA rule (half-life batch * 10 / 32 kimg, ramp-up 0.05)."""
    c = copy.deepcopy(config)
    res, kimg = config.stages[index]
    with c.unlocked():
        del c["stages"]
        del c["final_metric"]
    c.resolution = int(res)
    c.total_kimg = float(kimg)
    c.ema_kimg = c.batch_size * 10 / 32
    c.ema_rampup = 0.05
    c.model.stem_path = str(stage_dir(workdir, config.stages[index - 1][0]) / "G_ema.npz") if index else ""
    return c


def stage_dir(workdir, resolution) -> Path:
    return Path(workdir).absolute() / f"stage{int(resolution)}"


def _check_stages(config):
    stages = [tuple(s) for s in config.stages]
    if not stages or any(len(s) != 2 for s in stages):
        raise ValueError(f"config.stages must be a non-empty tuple of (resolution, kimg) pairs, got {config.stages!r}")
    res = [int(r) for r, _ in stages]
    if res[0] != int(config.model.stem_resolution) or any(b != 2 * a for a, b in zip(res, res[1:])):
        raise ValueError(f"config.stages resolutions {res} must start at model.stem_resolution="
                         f"{config.model.stem_resolution} and double at every stage")
    if any(float(k) <= 0 for _, k in stages):
        raise ValueError(f"config.stages: every stage needs kimg > 0, got {config.stages!r}")


def stages(config, workdir) -> list:
    """config.stages as `gigajax.train.stages.Stage`s: WORKDIR/stage<res>, each starting from the
    previous stage's G_ema.npz."""
    from gigajax.train.stages import Stage
    _check_stages(config)
    return [Stage(f"stage{int(res)}", f"{res}x{res}", stage_config(config, i, workdir),
                  init_path=stage_config(config, i, workdir).model.stem_path, meta={"resolution": int(res)})
            for i, (res, _) in enumerate(config.stages)]


def run_stages(config, build_fn, workdir, *, progress: bool = True) -> dict:
    """Train every stage in order (module doc), then print config.final_metric of the last stage's G_ema."""
    from gigajax.train import stages as S
    return S.run_stages(stages(config, workdir), build_fn, workdir, export=lambda state: state.ema,
                        export_name="G_ema.npz", final_metric=config.final_metric, dataset=config.dataset,
                        progress=progress)


def last_stage_dir(workdir) -> str:
    """--eval scores the newest stage that has checkpoints."""
    from gigajax.train.stages import last_stage_dir as last
    names = sorted((p.name for p in Path(workdir).glob("stage*") if p.name[len("stage"):].isdigit()),
                   key=lambda n: int(n[len("stage"):]))
    return last(workdir, names)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__, train_fn=run_stages, eval_workdir=last_stage_dir)
