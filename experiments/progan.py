"""ProGAN (Karras et al. 2018): G and D grow together from 4x4 with fade-ins, WGAN-GP + drift,
equalized learning rate, pixel norm, minibatch stddev, G_ema 0.999 per step.

    python -m experiments.progan [--variant NAME] [--workdir DIR] [--config.KEY=VALUE ...]

The growth schedule is the official one, run by gigajax.train.progressive: `lod_training_kimg`
at 4x4, then for each doubling a fade-in of `lod_transition_kimg` and a stable phase of
`lod_training_kimg`; the final resolution then trains until `total_kimg`. Each phase trains in
WORKDIR/<res>_<fade|stable> with its own compiled programs and fresh Adam state (the official
reset_opt_for_new_lod), starting from the previous phase's G, D and G_ema. `minibatch` and
`lrate` list per-resolution overrides ((res, value), ...), as the official minibatch_dict and
G/D_lrate_dict. Re-running resumes.

The default trains on mnist5k at 32x32 on a 2-core CPU in minutes, with narrow networks
(32 channels up to 16x16 and 16 at 32x32, latent 64), the paper's minibatch 16, 12-kimg phases,
and G_ema's beta 0.99 per step instead of 0.999. The paper's settings are the other variants.
"""

from __future__ import annotations

import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, narrow networks, batch 16, 12-kimg phases (about 15 minutes on 2 CPU cores), ends "
               "with fid1k_full",
    "celebahq": "CelebA-HQ 1024x1024 (--config.dataset=PATH): the paper's config (preset v1: 800/800-kimg phases, "
                "minibatch 16 -> 14/6/3 at 256/512/1024, mbstd group 16, 19000 kimg, x-flips)",
    "lsun": "an LSUN category at 256x256 (--config.dataset=PATH): 800/800-kimg phases, minibatch 16, 20000 kimg, "
            "x-flips",
    "cifar10": "tfds:cifar10 32x32: the official TF defaults (600/600-kimg phases, minibatch 128/128/128/64, "
               "12000 kimg); the paper's CIFAR numbers came from its Theano code (latent 128, fmap_max 128)",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    c = base_config()
    c.dataset = "mnist5k"
    # The paper's minibatch. Batch 64 on the same images gives 4x fewer steps per phase, and G
    # collapsed to one shape after the 8 -> 16 growth (benchmarks/RESULTS.md).
    c.batch_size = 16
    c.total_kimg = 96.0
    c.lod_initial_resolution = 4
    c.lod_training_kimg = 12.0       # 750 steps per phase
    c.lod_transition_kimg = 12.0
    c.minibatch = ()                 # ((resolution, batch), ...) overrides of batch_size
    c.lrate = ()                     # ((resolution, lr), ...) overrides of model.lr
    c.snapshot_kimg = 12.0
    c.log_every = 100
    c.final_metric = "fid1k_full"
    # G_ema's beta per step (official G_smoothing 0.999 over ~37,000 steps per phase). The CPU
    # default's phases are ~300 steps, over which 0.999 would leave G_ema 70% at its init.
    c.g_smoothing = 0.99
    c.model = ml_collections.ConfigDict(dict(
        latent_size=64, fmap_base=256, fmap_decay=1.0, fmap_max=32, mbstd_group_size=4, lr=0.001, beta1=0.0,
        beta2=0.99, eps=1e-8, gp_lambda=10.0, wgan_target=1.0, drift_epsilon=0.001))
    if variant != "default":
        c.g_smoothing = 0.999
    if variant == "celebahq":
        c.dataset = "celebahq1024.zip"
        c.xflip = True
        c.batch_size = 16
        c.minibatch = ((256, 14), (512, 6), (1024, 3))
        c.lod_training_kimg = c.lod_transition_kimg = 800.0
        c.total_kimg = 19_000.0
        c.snapshot_kimg = 200.0
        c.final_metric = "fid50k_full"
        c.model.update(latent_size=512, fmap_base=8192, fmap_max=512, mbstd_group_size=16)
    elif variant == "lsun":
        c.dataset = "lsun256.zip"
        c.xflip = True
        c.batch_size = 16
        c.lod_training_kimg = c.lod_transition_kimg = 800.0
        c.total_kimg = 20_000.0
        c.snapshot_kimg = 200.0
        c.final_metric = "fid50k_full"
        c.model.update(latent_size=512, fmap_base=8192, fmap_max=512)
    elif variant == "cifar10":
        c.dataset = "tfds:cifar10"
        c.batch_size = 64
        c.minibatch = ((4, 128), (8, 128), (16, 128), (32, 64))
        c.lod_training_kimg = c.lod_transition_kimg = 600.0
        c.total_kimg = 12_000.0
        c.snapshot_kimg = 200.0
        c.final_metric = "fid50k_full"
        c.model.update(latent_size=512, fmap_base=8192, fmap_max=512)
    return c


def build(config, spec):
    from gigajax.train.recipes.progan import ProGANRecipe
    return ProGANRecipe(spec, **config.model)


def run(config, build_fn, workdir, *, progress: bool = True) -> dict:
    from gigajax.train import progressive
    return progressive.run(config, build_fn, workdir, ema=progressive.ema_per_step(config.g_smoothing),
                           progress=progress)


if __name__ == "__main__":
    from gigajax.train.cli import main
    from gigajax.train.progressive import last_phase_dir
    main(get_config, build, VARIANTS, doc=__doc__, train_fn=run, eval_workdir=last_phase_dir)
