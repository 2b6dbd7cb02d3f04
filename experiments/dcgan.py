"""DCGAN (Radford et al. 2016) on mnist5k: conv G/D with BatchNorm, Adam(2e-4, 0.5).  python -m experiments.dcgan [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, ngf=ndf=32, about 5 minutes on a 2-core CPU",
    "cifar10": "tfds:cifar10 32x32x3 with the paper's widths (ngf=ndf=128), batch 128",
    "conditional": "mnist5k with labels: one-hot c concatenated to z and to D's input; one class per grid row",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.total_kimg = 150.0
    c.batch_size = 64
    c.snapshot_kimg = 25.0
    c.dataset = "mnist5k"
    c.model = ml_collections.ConfigDict(dict(z_dim=100, ngf=32, ndf=32, g_norm="batch", d_norm="batch",
                                             g_loss="nonsaturating", lr=2e-4, beta1=0.5, beta2=0.999,
                                             conditional=False))
    if variant == "cifar10":
        c.dataset = "tfds:cifar10"
        c.batch_size = 128
        c.total_kimg = 10_000.0
        c.snapshot_kimg = 500.0
        c.model.ngf = c.model.ndf = 128
    elif variant == "conditional":
        c.use_labels = True
        c.model.conditional = True
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return c


def build(config, spec):   # spec: gigajax.train.recipe.DataSpec(resolution, channels, c_dim)
    from gigajax.train.recipes.dcgan import DCGANRecipe
    return DCGANRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
