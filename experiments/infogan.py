"""InfoGAN (Chen et al. 2016) on mnist5k: unsupervised GAN whose 10-way categorical code learns digit classes and 2 continuous codes learn slant and width.  python -m experiments.infogan [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, networks at half the paper's width, about 5 minutes on a 2-core CPU",
    "paper": "mnist5k 32x32 with the paper's MNIST widths (conv 64/128, FC 1024, Q FC 128), 50 epochs-worth",
    "learned_std": "default, but Q also learns each continuous code's std (lambda_cont 0.1)",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.total_kimg = 128.0            # 2,000 steps of 64
    c.batch_size = 64
    c.snapshot_kimg = 32.0
    c.dataset = "mnist5k"
    c.use_labels = False            # InfoGAN is unsupervised: the categorical code finds the classes itself
    c.model = ml_collections.ConfigDict(dict(
        noise_dim=62, cat_dim=10, cont_dim=2,   # z = [noise 62 | one-hot 10 | continuous 2] (paper, MNIST)
        ch=32, fc_dim=512, q_dim=128,           # the paper: ch=64, fc_dim=1024, q_dim=128
        lambda_cat=1.0, lambda_cont=1.0,        # official MNIST info_reg_coeff = 1 for both
        q_learn_std=False,                      # the paper's MNIST Q: fixed unit std for the continuous codes
        lr_g=1e-3, lr_d=2e-4, beta1=0.5, beta2=0.999,
    ))
    if variant == "paper":
        c.model.ch, c.model.fc_dim = 64, 1024
        c.total_kimg = 3000.0       # 50 epochs of the 60k MNIST training set
        c.snapshot_kimg = 200.0
    elif variant == "learned_std":
        c.model.q_learn_std = True
        c.model.lambda_cont = 0.1
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return c


def build(config, spec):   # spec: gigajax.train.recipe.DataSpec(resolution, channels, c_dim)
    from gigajax.train.recipes.infogan import InfoGANRecipe
    return InfoGANRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
