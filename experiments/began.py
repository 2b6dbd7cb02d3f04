"""BEGAN (Berthelot et al. 2017) on mnist5k: autoencoder discriminator balanced by the k_t equilibrium controller.  python -m experiments.began [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, n=16, batch 16, sped-up controller (gamma 1, lambda_k 0.01, lr 5e-4): "
               "about 5 minutes on a 2-core CPU; early BEGAN samples (thin strokes, many 1s)",
    "paper": "mnist5k 32x32 with the paper's hyper-parameters (gamma 0.5, lambda_k 0.001, lr 1e-4, n=64), long run",
    "celeba64": "the paper's 64x64 faces (n=64, h=z=64, batch 16, gamma 0.5): pass an image folder or zip "
                "with --config.dataset=PATH (e.g. aligned CelebA crops)",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.total_kimg = 32.0             # 2,000 steps of 16
    c.batch_size = 16               # the batch size of the paper's experiments
    c.snapshot_kimg = 8.0
    c.dataset = "mnist5k"
    c.use_labels = False
    c.model = ml_collections.ConfigDict(dict(
        z_dim=64, h_dim=64,                   # N_z = N_h = 64 (paper)
        n=16, base_resolution=8, convs_per_level=2,   # paper: n = 64 or 128 at 64x64
        g_out_bias=-0.8,                      # start G at MNIST's background (see the recipe's docstring)
        gamma=1.0, lambda_k=0.01, eta=1,      # paper: gamma 0.5, lambda_k 0.001; L1 reconstruction
        lr_g=5e-4, lr_d=5e-4, beta1=0.5, beta2=0.999,   # paper: lr 1e-4
    ))
    if variant == "paper":
        c.model.update(dict(n=64, gamma=0.5, lambda_k=0.001, lr_g=1e-4, lr_d=1e-4))
        c.total_kimg = 1600.0       # 100k steps of 16
        c.snapshot_kimg = 100.0
    elif variant == "celeba64":
        c.dataset = ""               # required: --config.dataset=PATH to a folder / zip of face crops
        c.resolution = 64
        c.total_kimg = 3200.0        # 200k steps of 16
        c.snapshot_kimg = 100.0
        c.model.update(dict(n=64, g_out_bias=0.0, gamma=0.5, lambda_k=0.001, lr_g=1e-4, lr_d=1e-4))
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return c


def build(config, spec):   # spec: gigajax.train.recipe.DataSpec(resolution, channels, c_dim)
    from gigajax.train.recipes.began import BEGANRecipe
    return BEGANRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
