"""WGAN-GP (Gulrajani et al. 2017) on mnist5k: DCGAN-style G, critic without normalisation, gradient penalty lambda=10, drift 0.001, n_critic=5.  python -m experiments.wgan_gp [--workdir DIR] [--variant NAME] [--config.KEY=VALUE ...]

Every training step is one critic update on a fresh real batch; G updates on every 5th step.
The drift term epsilon * D(x)^2 is ProGAN's (model.drift_epsilon; 0 turns it off). The default
uses Adam(3e-4, b1=0.5, b2=0.9) (the b1 of the paper's released code, a larger step for the CPU
budget); the cifar10 variant uses the paper's Algorithm 1 values, Adam(1e-4, b1=0, b2=0.9).
"""
import ml_collections

from gigajax.train.config import base_config

VARIANTS = {
    "default": "mnist5k 32x32, about 5 minutes on a 2-core CPU",
    "cifar10": "tfds:cifar10 32x32x3, the paper's settings (Adam 1e-4, b1=0, b2=0.9; ngf = ndf = 64)",
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
    c = base_config()
    c.dataset = "mnist5k"
    c.batch_size = 64
    c.total_kimg = 256.0          # 4,000 critic steps, 800 G updates
    c.snapshot_kimg = 64.0
    c.model = ml_collections.ConfigDict(dict(
        z_dim=100, ngf=32, ndf=32, g_norm="batch", d_norm="none", lr=3e-4, beta1=0.5, beta2=0.9,
        n_critic=5, gp_lambda=10.0, drift_epsilon=0.001, conditional=False))
    if variant == "cifar10":
        c.dataset = "tfds:cifar10"
        c.total_kimg = 64000.0     # 200k G updates x 5 critic batches of 64
        c.snapshot_kimg = 2000.0
        c.model.ngf = 64
        c.model.ndf = 64
        c.model.lr = 1e-4
        c.model.beta1 = 0.0
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return c


def build(config, spec):
    from gigajax.train.recipes.wgan_gp import WGANGPRecipe
    return WGANGPRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
