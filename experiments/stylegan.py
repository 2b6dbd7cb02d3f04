"""StyleGAN v1 (Karras et al. 2019): the style-based generator (mapping network, constant input,
AdaIN styles, per-pixel noise, [1, 2, 1] blurs) grown progressively as ProGAN, with the
non-saturating loss, R1 (gamma 10, every step), style mixing (0.9) and G_ema with a 10-kimg
half-life.

    python -m experiments.stylegan [--variant NAME] [--workdir DIR] [--config.KEY=VALUE ...]

The growth schedule and the phase directories are ProGAN's (gigajax.train.progressive; see
experiments/progan.py): WORKDIR/<res>_<fade|stable>, fresh Adam per phase (the official
reset_opt_for_new_lod), handover of G, D, G_ema and w_avg. Re-running resumes.

The default trains on mnist5k at 32x32 on a 2-core CPU in minutes: from 8x8 (as the official
FFHQ config), narrow networks (32 channels, 16 at 32x32, w of 64, 4 mapping layers), batch 16,
12-kimg phases and G_ema's half-life 2 kimg instead of 10. The final phase's directory works with the tools:
`python -m gigajax.tools truncation-grid --network DIR/32_stable --outdir OUT --seeds 0-7` (and
`style-mixing`, `interpolate`, `project`); FID and snapshot grids use no truncation, as the
official is_validation.
"""

from __future__ import annotations

import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32 from 8x8, narrow networks, batch 16, 12-kimg phases (minutes on 2 CPU cores), ends "
               "with fid1k_full",
    "ffhq": "FFHQ 1024x1024 (--config.dataset=PATH): config F (from 8x8, 600/600-kimg phases, minibatch 512 -> 32, "
            "lr 0.0015-0.003 from 128 up, 25000 kimg, x-flips)",
    "ffhq256": "FFHQ at 256x256 (--config.dataset=PATH), config F's schedule",
    "celebahq": "CelebA-HQ 1024x1024 (--config.dataset=PATH), config F's settings (the official line for CelebA-HQ)",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    c = base_config()
    c.dataset = "mnist5k"
    c.batch_size = 16                # enough steps per phase (see experiments/progan.py)
    c.total_kimg = 72.0
    c.lod_initial_resolution = 8
    c.lod_training_kimg = 12.0
    c.lod_transition_kimg = 12.0
    c.minibatch = ()                 # ((resolution, batch), ...) overrides of batch_size
    c.lrate = ()                     # ((resolution, lr), ...) overrides of model.lr
    c.snapshot_kimg = 12.0
    c.log_every = 100
    c.final_metric = "fid1k_full"
    c.g_smoothing_kimg = 2.0         # G_ema half-life (official 10)
    c.model = ml_collections.ConfigDict(dict(
        latent_size=64, dlatent_size=64, mapping_layers=4, mapping_fmaps=64, mapping_lrmul=0.01, fmap_base=256,
        fmap_decay=1.0, fmap_max=32, mbstd_group_size=4, lr=0.001, beta1=0.0, beta2=0.99, eps=1e-8, r1_gamma=10.0,
        style_mixing_prob=0.9, w_avg_beta=0.995, conditional=False,
        # the official G_synthesis switches (paper Table 1's configs; gigajax.models.stylegan1)
        const_input_layer=True, use_noise=True, use_pixel_norm=False, use_instance_norm=True, use_styles=True))
    if variant != "default":
        c.dataset = {"ffhq": "ffhq1024.zip", "ffhq256": "ffhq256.zip", "celebahq": "celebahq1024.zip"}[variant]
        c.xflip = True
        c.batch_size = 32
        c.minibatch = ((4, 512), (8, 256), (16, 128), (32, 64), (64, 32))
        c.lrate = ((128, 0.0015), (256, 0.002), (512, 0.003), (1024, 0.003))
        c.lod_training_kimg = c.lod_transition_kimg = 600.0
        c.total_kimg = 25_000.0
        c.snapshot_kimg = 200.0
        c.final_metric = "fid50k"
        c.g_smoothing_kimg = 10.0
        c.model.update(latent_size=512, dlatent_size=512, mapping_layers=8, mapping_fmaps=512, fmap_base=8192,
                       fmap_max=512)
    return c


def build(config, spec):
    from gigajax.train.recipes.stylegan1 import StyleGAN1Recipe
    return StyleGAN1Recipe(spec, **config.model)


def run(config, build_fn, workdir, *, progress: bool = True) -> dict:
    from gigajax.train import progressive
    return progressive.run(config, build_fn, workdir, ema=progressive.ema_half_life(config.g_smoothing_kimg),
                           progress=progress)


if __name__ == "__main__":
    from gigajax.train.cli import main
    from gigajax.train.progressive import last_phase_dir
    main(get_config, build, VARIANTS, doc=__doc__, train_fn=run, eval_workdir=last_phase_dir)
