"""Conditional GAN (Mirza & Osindero 2014) on mnist5k: MLP G and D with the one-hot digit label concatenated to their inputs.  python -m experiments.cgan [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]

The label is concatenated as a raw one-hot vector (no learned embedding) to G's latent and to
D's flattened image; fakes use the real batch's labels. The sample grid shows one digit class
per row.
"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, about 5 minutes on a 2-core CPU",
    "mnist": "tfds:mnist 28x28 (60k digits), the paper's setting",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.dataset = "mnist5k"
    c.use_labels = True
    c.batch_size = 64
    c.total_kimg = 256.0          # 4,000 steps at about 50 ms each on 2 CPU cores
    c.snapshot_kimg = 64.0
    c.model = ml_collections.ConfigDict(dict(
        z_dim=100, g_hidden=(256, 512, 1024), d_hidden=(1024, 512, 256), d_dropout=0.0,
        g_loss="nonsaturating", lr=2e-4, beta1=0.5, beta2=0.999))
    if variant == "mnist":
        c.dataset = "tfds:mnist"
        c.batch_size = 100         # the paper's minibatch size
        c.total_kimg = 3000.0      # 50 epochs of 60k
        c.snapshot_kimg = 300.0
        c.model.d_dropout = 0.5    # the paper used dropout 0.5 in both nets
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return c


def build(config, spec):
    from gigajax.train.recipes.cgan import CGANRecipe
    return CGANRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
