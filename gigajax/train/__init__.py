"""Generic GAN trainer: state, sharded steps, EMA, checkpoints, logging and sample grids."""

from gigajax.train.recipe import DataSpec, GANRecipe, Phase  # noqa: F401
