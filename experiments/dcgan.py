"""DCGAN (Radford et al. 2016) on mnist5k: conv G/D with BatchNorm, LeakyReLU D, Adam(2e-4, b1=0.5).  python -m experiments.dcgan [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]

The default uses a quarter of the paper's widths (ngf = ndf = 32 at 32x32, G channels
128-64-32) to fit a CPU budget; the cifar10 variant uses the paper's (ngf = ndf = 128). The
conditional variant concatenates the one-hot label to z and, as constant maps, to D's input.
Latent walks and vector arithmetic: gigajax.models.latent_ops.
"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, about 5 minutes on a 2-core CPU",
    "cifar10": "tfds:cifar10 32x32x3 with the paper's widths (ngf = ndf = 128), batch 128",
    "conditional": "mnist5k with labels: one-hot c concatenated to z and to D's input; one class per grid row",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.dataset = "mnist5k"
    c.batch_size = 64
    c.total_kimg = 256.0          # 4,000 steps at about 65 ms each on 2 CPU cores
    c.snapshot_kimg = 64.0
    c.model = ml_collections.ConfigDict(dict(
        z_dim=100, ngf=32, ndf=32, g_norm="batch", d_norm="batch", g_loss="nonsaturating",
        lr=2e-4, beta1=0.5, beta2=0.999, conditional=False))
    if variant == "cifar10":
        c.dataset = "tfds:cifar10"
        c.batch_size = 128         # the paper's minibatch size
        c.total_kimg = 10_000.0    # 200 epochs of 50k
        c.snapshot_kimg = 500.0
        c.model.ngf = 128
        c.model.ndf = 128
    elif variant == "conditional":
        c.use_labels = True
        c.model.conditional = True
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return c


def build(config, spec):
    from gigajax.train.recipes.dcgan import DCGANRecipe
    return DCGANRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
