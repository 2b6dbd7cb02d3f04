"""StyleGAN2 (Karras et al. 2020): mapping + modulated synthesis (skip), residual D, lazy R1 and
path-length regularisation, style mixing, G_ema.   python -m experiments.stylegan2 [--variant NAME]

The default is a narrow StyleGAN2 for mnist5k at 32x32 on a 2-core CPU (every regulariser of the
paper on, widths cut to fit the budget; about 130 img/s). Known problem: at these widths it
mode-collapses within 10-20 kimg (one digit shape for every z), and so does NVlabs' own code run
at the same config on the same data; neither ADA, R1 gamma 1, no path length, the cifar spec
(mbstd 32, D orig, no mixing), lr 0.001, an 8-layer 128-d mapping nor 2x widths avoided it. The other variants hold the paper's / StyleGAN2-ADA's
settings (stylegan2-ada-pytorch train.py specs 'cifar', 'paper256', 'paper1024'). Every variant has
an '-ada' twin (e.g. `--variant cifar10-ada`): StyleGAN2-ADA's adaptive augmentation (bgc pipe,
target 0.6, p adjusted every 4 steps at 500 kimg speed), as train.py --aug=ada.
"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, narrow (channel_base 1024, max 64, z = w = 64), ~130 img/s on a 2-core CPU; "
               "mode-collapses at this width (module doc)",
    "conditional": "the default with labels: class embedding in G's mapping, projection D; one class per grid row",
    "cifar10": "tfds:cifar10 with labels, StyleGAN2-ADA's cifar spec (map 2, mbstd 32, gamma 0.01, no PL/mixing, "
               "D orig, ema 500 kimg, 100M images)",
    "ffhq256": "an FFHQ 256x256 zip (--config.dataset=PATH), spec paper256 (fmaps 0.5, gamma 1, ema 20, mbstd 8)",
    "ffhq1024": "an FFHQ 1024x1024 zip (--config.dataset=PATH), spec paper1024 (fmaps 1, gamma 2, lr 0.002, "
                "batch 32, ema 10, mbstd 4)",
}
VARIANTS.update({f"{name}-ada": f"{name} + adaptive discriminator augmentation (bgc, target 0.6)"
                 for name in list(VARIANTS)})


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.dataset = "mnist5k"
    c.batch_size = 32
    c.total_kimg = 200.0
    c.snapshot_kimg = 50.0
    c.ema_kimg = c.batch_size * 10 / 32   # the official auto rule
    c.ema_rampup = 0.05
    c.model = ml_collections.ConfigDict(dict(
        z_dim=64, w_dim=64, map_layers=2, cbase=1024, cmax=64, g_architecture="skip", d_architecture="resnet",
        conv_clamp=256.0, mbstd_group=4, mbstd_channels=1, use_noise=True, r1_gamma=0.05, r1_interval=16, pl_weight=2.0, pl_interval=4,
        pl_batch_shrink=2, pl_decay=0.01, style_mixing_prob=0.9, glr=0.0025, dlr=0.0025, map_lr_mult=0.01,
        conditional=False, augment="noaug", augpipe="bgc", aug_p=0.0, ada_target=0.6, ada_interval=4,
        ada_kimg=500.0, betas=(0.0, 0.99)))
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    if variant.endswith("-ada"):
        variant = variant[:-len("-ada")]
        c.model.augment = "ada"
    if variant == "conditional":
        c.use_labels = True
        c.model.conditional = True
    elif variant == "cifar10":
        c.dataset = "tfds:cifar10"
        c.use_labels = True
        c.xflip = False
        c.batch_size = 64
        c.total_kimg = 100_000.0
        c.snapshot_kimg = 200.0
        c.ema_kimg, c.ema_rampup = 500.0, 0.05
        c.model.update(z_dim=512, w_dim=512, map_layers=2, cbase=32768, cmax=512, d_architecture="orig",
                       mbstd_group=32, r1_gamma=0.01, pl_weight=0.0, style_mixing_prob=0.0, conditional=True)
    elif variant in ("ffhq256", "ffhq1024"):
        c.dataset = "ffhq.zip"
        c.xflip = True
        c.total_kimg = 25_000.0
        c.snapshot_kimg = 200.0
        c.ema_rampup = 0.0
        c.model.update(z_dim=512, w_dim=512, map_layers=8, cmax=512)
        if variant == "ffhq256":
            c.batch_size, c.ema_kimg = 64, 20.0
            c.model.update(cbase=16384, mbstd_group=8, r1_gamma=1.0)
        else:
            c.batch_size, c.ema_kimg = 32, 10.0
            c.model.update(cbase=32768, mbstd_group=4, r1_gamma=2.0, glr=0.002, dlr=0.002)
    return c


def build(config, spec):
    from gigajax.train.recipes.stylegan2 import StyleGAN2Recipe
    return StyleGAN2Recipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
