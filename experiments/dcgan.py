"""DCGAN (Radford et al. 2016) on mnist5k: conv G/D with BatchNorm, LeakyReLU D, Adam(2e-4, b1=0.5).  python -m experiments.dcgan [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]

The default halves the paper's widths (ngf = ndf = 32 at 32x32, G channels 128-64-32) to fit
a CPU budget; the cifar10 variant uses ngf = ndf = 64. Latent walks and vector arithmetic:
gigajax.models.latent_ops.
"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, about 5 minutes on a 2-core CPU",
    "cifar10": "tfds:cifar10 32x32x3, the paper's settings (ngf = ndf = 64, batch 128)",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.dataset = "mnist5k"
    c.batch_size = 64
    c.total_kimg = 192.0          # 3,000 steps at about 75 ms each on 2 CPU cores
    c.snapshot_kimg = 48.0
    c.model = ml_collections.ConfigDict(dict(
        z_dim=100, ngf=32, ndf=32, g_norm="batch", d_norm="batch", g_loss="nonsaturating",
        lr=2e-4, beta1=0.5, beta2=0.999))
    if variant == "cifar10":
        c.dataset = "tfds:cifar10"
        c.batch_size = 128         # the paper's minibatch size
        c.total_kimg = 5000.0      # 100 epochs of 50k
        c.snapshot_kimg = 250.0
        c.model.ngf = 64
        c.model.ndf = 64
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return c


def build(config, spec):
    from gigajax.train.recipes.dcgan import DCGANRecipe
    return DCGANRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
