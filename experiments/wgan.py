"""WGAN (Arjovsky et al. 2017) on mnist5k: DCGAN networks, linear critic, weight clipping c=0.01, n_critic=5, RMSprop.  python -m experiments.wgan [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]

Every training step is one critic update on a fresh real batch; G updates on every 5th step
(phase intervals), so total_kimg counts the images the critic saw. The critic keeps BatchNorm as
in the paper's DCGAN critic (a clipped critic without it collapsed on mnist5k). The default uses
RMSprop lr 5e-4 to get digits within the CPU budget; the paper's 5e-5 (the cifar10 variant)
needs far more G updates.
"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, about 5 minutes on a 2-core CPU",
    "cifar10": "tfds:cifar10 32x32x3, the paper's settings (lr 5e-5, ngf = ndf = 64)",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.dataset = "mnist5k"
    c.batch_size = 64
    c.total_kimg = 320.0          # 5,000 critic steps, 1,000 G updates
    c.snapshot_kimg = 80.0
    c.model = ml_collections.ConfigDict(dict(
        z_dim=100, ngf=32, ndf=32, g_norm="batch", d_norm="batch", lr=5e-4, n_critic=5, clip=0.01,
        conditional=False))
    if variant == "cifar10":
        c.dataset = "tfds:cifar10"
        c.total_kimg = 32000.0     # 100k G updates x 5 critic batches of 64
        c.snapshot_kimg = 1000.0
        c.model.ngf = 64
        c.model.ndf = 64
        c.model.lr = 5e-5
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return c


def build(config, spec):
    from gigajax.train.recipes.wgan import WGANRecipe
    return WGANRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
