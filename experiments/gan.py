"""GAN (Goodfellow et al. 2014) on mnist5k: MLP generator and discriminator, non-saturating G loss.  python -m experiments.gan [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]

The networks use LeakyReLU(0.2) instead of the paper's ReLU/maxout units and Adam(2e-4, b1=0.5)
instead of SGD with momentum (see gigajax.models.gan). --config.model.g_loss=minimax trains G
with the original minimax objective log(1 - D(G(z))), which saturates early.
"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, about 5 minutes on a 2-core CPU",
    "mnist": "tfds:mnist 28x28 (60k digits), the paper's MNIST setting",
    "cifar10": "tfds:cifar10 32x32x3, a wider MLP",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.dataset = "mnist5k"
    c.batch_size = 64
    c.total_kimg = 256.0          # 4,000 steps at about 50 ms each on 2 CPU cores
    c.snapshot_kimg = 64.0
    c.model = ml_collections.ConfigDict(dict(
        z_dim=100, g_hidden=(256, 512, 1024), d_hidden=(1024, 512, 256), d_dropout=0.0,
        g_loss="nonsaturating", lr=2e-4, beta1=0.5, beta2=0.999))
    if variant == "mnist":
        c.dataset = "tfds:mnist"
        c.batch_size = 100
        c.total_kimg = 3000.0      # 50 epochs of 60k
        c.snapshot_kimg = 300.0
    elif variant == "cifar10":
        c.dataset = "tfds:cifar10"
        c.total_kimg = 5000.0      # 100 epochs of 50k
        c.snapshot_kimg = 250.0
        c.model.g_hidden = (1024, 1024, 2048)
        c.model.d_hidden = (2048, 1024, 512)
        c.model.d_dropout = 0.5
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return c


def build(config, spec):
    from gigajax.train.recipes.gan import VanillaGANRecipe
    return VanillaGANRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
