"""One Python config per model: `python -m experiments.<name> [--variant NAME] [overrides]`.

No experiment has landed yet; the first ones (the classic GANs) come with the trainer.
"""
