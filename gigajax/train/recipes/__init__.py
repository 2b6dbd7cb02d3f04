"""Recipes: a model family, its losses, optimizers and phases, packaged for the trainer."""
