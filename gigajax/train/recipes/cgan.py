"""Conditional GAN (Mirza & Osindero 2014): the MLP GAN with the one-hot label concatenated to G's
latent and to D's flattened image (see gigajax.models.gan). Fakes are drawn with the real batch's
labels, so D sees the same class mix on both sides. Needs config.use_labels=True."""

from __future__ import annotations

from gigajax.train.recipe import DataSpec
from gigajax.train.recipes.gan import VanillaGANRecipe


class CGANRecipe(VanillaGANRecipe):
    """VanillaGANRecipe with conditional=True; the keyword arguments are the same."""

    def __init__(self, spec: DataSpec, **kwargs):
        kwargs.setdefault("conditional", True)
        if not kwargs["conditional"]:
            raise ValueError("CGANRecipe: conditional=False is the plain GAN; use VanillaGANRecipe")
        super().__init__(spec, **kwargs)
