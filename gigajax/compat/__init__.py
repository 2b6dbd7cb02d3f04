"""Compatibility with the official implementations: golden-case reading, the verifier, and
converters between official PyTorch state_dicts / layouts and gigajax variables."""
