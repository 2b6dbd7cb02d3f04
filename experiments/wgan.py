"""WGAN (Arjovsky et al. 2017) on mnist5k: DCGAN-style critic, weight clipping to 0.01, RMSprop(5e-5), n_critic = 5.  python -m experiments.wgan [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]

Each step trains the critic on one real batch; G updates every n_critic-th step (Phase intervals).
The default halves the paper's widths (ngf = ndf = 32) to fit a CPU budget.
"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, about 5 minutes on a 2-core CPU",
    "cifar10": "tfds:cifar10 32x32x3, ngf = ndf = 64, batch 64, the paper's optimiser settings",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.dataset = "mnist5k"
    c.batch_size = 64
    c.total_kimg = 160.0
    c.snapshot_kimg = 40.0
    c.model = ml_collections.ConfigDict(dict(z_dim=100, ngf=32, ndf=32, g_norm="batch", d_norm="batch",
                                             lr=5e-5, n_critic=5, clip=0.01, conditional=False))
    if variant == "cifar10":
        c.dataset = "tfds:cifar10"
        c.total_kimg = 10_000.0
        c.snapshot_kimg = 500.0
        c.model.ngf = c.model.ndf = 64
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return c


def build(config, spec):   # spec: gigajax.train.recipe.DataSpec(resolution, channels, c_dim)
    from gigajax.train.recipes.wgan import WGANRecipe
    return WGANRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
