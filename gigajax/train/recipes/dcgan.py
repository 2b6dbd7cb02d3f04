"""DCGAN (Radford et al. 2016): conv G with BatchNorm + ReLU, conv D with LeakyReLU(0.2) and
BatchNorm except on its first layer, N(0, 0.02) init, Adam(2e-4, b1=0.5), non-saturating G loss.

Real and fake images go through D as separate batches (the paper's practice, which the
BatchNorm statistics depend on). Both networks train with batch statistics and keep running
averages in 'batch_stats'; `generate` uses the running averages (inference mode)."""

from __future__ import annotations

from gigajax.train.recipe import DataSpec
from gigajax.train.recipes.gan import VanillaGANRecipe


class DCGANRecipe(VanillaGANRecipe):
    """z_dim: latent size; ngf / ndf: G's last and D's first channel count (doubling per
    resolution halving); g_norm: 'batch' or 'none'; d_norm: 'batch', 'layer' or 'none';
    g_loss: 'nonsaturating' or 'minimax'; lr, beta1, beta2: Adam for both networks;
    conditional: concatenate one-hot labels (to z, and as constant maps to D's input)."""

    def __init__(self, spec: DataSpec, z_dim: int = 100, ngf: int = 64, ndf: int = 64, g_norm: str = "batch",
                 d_norm: str = "batch", g_loss: str = "nonsaturating", lr: float = 2e-4, beta1: float = 0.5,
                 beta2: float = 0.999, conditional: bool = False):
        if g_norm not in ("batch", "none"):
            raise ValueError(f"{type(self).__name__}: g_norm must be 'batch' or 'none', got {g_norm!r}")
        if d_norm not in ("batch", "layer", "none"):
            raise ValueError(f"{type(self).__name__}: d_norm must be 'batch', 'layer' or 'none', got {d_norm!r}")
        self.ngf, self.ndf, self.g_norm, self.d_norm = int(ngf), int(ndf), g_norm, d_norm
        super().__init__(spec, z_dim=z_dim, g_loss=g_loss, lr=lr, beta1=beta1, beta2=beta2, conditional=conditional)

    def build_networks(self):
        from gigajax.models.dcgan import Discriminator, Generator
        s = self.spec
        G = Generator(z_dim=self.z_dim, c_dim=self.c_dim, img_resolution=s.resolution, img_channels=s.channels,
                      ngf=self.ngf, norm=self.g_norm)
        D = Discriminator(c_dim=self.c_dim, img_resolution=s.resolution, img_channels=s.channels,
                          ndf=self.ndf, norm=self.d_norm)
        return G, D
