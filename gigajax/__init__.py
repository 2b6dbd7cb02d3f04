"""gigajax: image-generation models (GANs, hierarchical VAEs) and their metrics in JAX/Flax."""

__version__ = "0.1.0"
