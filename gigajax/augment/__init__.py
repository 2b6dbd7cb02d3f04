"""Differentiable data augmentation for GAN discriminators: StyleGAN2-ADA's pipeline (`ada`) and
DiffAugment (`diffaug`, used by Projected GAN and StyleGAN-XL).

`augment(pipe, images, p, key)` is pure JAX (jit/grad-safe, NHWC), `adjust_p` is the adaptive
update of p, `PRESETS` holds the official `--augpipe` choices. `diff_augment(images, key, policy)`
applies DiffAugment's 'color,translation,cutout'."""

from gigajax.augment.ada import (
    PRESETS, AugmentPipe, adjust_p, augment, augment_with_params, identity_params, sample_params,
)
from gigajax.augment.diffaug import diff_augment

__all__ = ["PRESETS", "diff_augment", "AugmentPipe", "adjust_p", "augment", "augment_with_params", "identity_params",
           "sample_params"]
