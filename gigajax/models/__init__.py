"""Networks, one module per model family (flax.linen only; models never import gigajax.train)."""
