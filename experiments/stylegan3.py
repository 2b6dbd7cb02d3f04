"""StyleGAN3 (Karras et al. 2021): alias-free generator (Fourier-feature input, filtered leaky
ReLUs), StyleGAN2's discriminator, lazy R1, G_ema.   python -m experiments.stylegan3 [--variant NAME]

The default is config T, narrow, for mnist5k at 32x32 on a 2-core CPU. The 't' and 'r' variants
are the two configs at that size; the paper-sized variants hold NVlabs' stylegan3 train.py
settings (--cfg=stylegan3-t|r --batch=32 --gamma=... with ADA, as its docs recommend).
"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "config T on mnist5k 32x32, narrow and shallow (6 layers, margin 4, channel_base 1024, max 64, "
               "z = w = 64); about 9 img/s on a 2-core CPU",
    "t": "the default (config T, mnist5k 32x32)",
    "r": "config R on mnist5k 32x32 (1x1 convs, radial filters, 2x channels, D blur fading over 200 kimg)",
    "t-afhq512": "config T at the paper's AFHQv2 512x512 run (--config.dataset=PATH; gamma 8.2, ADA, batch 32)",
    "r-afhq512": "config R at the paper's AFHQv2 512x512 run (--config.dataset=PATH; gamma 16.4, ADA, batch 32)",
    "t-ffhq1024": "config T at FFHQ 1024x1024 (--config.dataset=PATH; gamma 32, ADA, batch 32)",
    "r-ffhq1024": "config R at FFHQ 1024x1024 (--config.dataset=PATH; gamma 32, ADA, batch 32)",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    c = base_config()
    c.dataset = "mnist5k"
    c.batch_size = 32
    c.total_kimg = 200.0
    c.snapshot_kimg = 50.0
    c.ema_kimg = c.batch_size * 10 / 32      # train.py
    c.ema_rampup = 0.05                      # training_loop.py default
    cfg = "stylegan3-r" if variant.startswith("r") else "stylegan3-t"
    c.model = ml_collections.ConfigDict(dict(
        cfg=cfg, z_dim=64, w_dim=64, map_layers=2, cbase=1024, cmax=64,
        d_architecture="resnet", conv_clamp=256.0, mbstd_group=4, r1_gamma=0.05, r1_interval=16, glr=0.0025,
        dlr=0.002, map_lr_mult=0.01, conditional=False, augment="noaug", augpipe="bgc", aug_p=0.0,
        ada_target=0.6, ada_interval=4, ada_kimg=100.0,
        # The paper's 14 layers and 10-pixel margins cost ~4x more per image at this size.
        num_layers=6, num_critical=2, margin_size=4))
    if variant in ("t-afhq512", "r-afhq512", "t-ffhq1024", "r-ffhq1024"):
        c.dataset = "images.zip"
        c.xflip = True
        c.total_kimg = 25_000.0
        c.snapshot_kimg = 200.0
        gamma = {"t-afhq512": 8.2, "r-afhq512": 16.4, "t-ffhq1024": 32.0, "r-ffhq1024": 32.0}[variant]
        c.model.update(z_dim=512, w_dim=512, cbase=32768, cmax=512, r1_gamma=gamma, augment="ada",
                       num_layers=14, num_critical=2, margin_size=10)
    return c


def build(config, spec):
    from gigajax.train.recipes.stylegan3 import StyleGAN3Recipe
    # batch_size sets the official batch-dependent defaults (magnitude EMA, blur fade).
    return StyleGAN3Recipe(spec, batch_size=config.batch_size, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
