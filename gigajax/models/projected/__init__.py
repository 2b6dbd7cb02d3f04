"""The projected discriminator (Sauer et al. 2021, "Projected GANs Converge Faster"), as
StyleGAN-XL uses it: frozen pretrained feature networks, frozen random cross-channel and
cross-scale projections, and small trainable multi-scale discriminators with class projection."""

from gigajax.models.projected.blocks import BatchStatNorm, DownBlock, SNConv2d
from gigajax.models.projected.discriminator import NFC, MultiScaleD, ProjectedDiscriminator, SingleDisc
from gigajax.models.projected.projector import (
    BACKBONES, Backbone, FeatureProjector, RandomProjection, get_backbone, nominal_resolutions, projection_channels,
    register_backbone, register_deit,
)

__all__ = ["BACKBONES", "Backbone", "BatchStatNorm", "DownBlock", "FeatureProjector", "MultiScaleD", "NFC",
           "ProjectedDiscriminator", "RandomProjection", "SNConv2d", "SingleDisc", "get_backbone",
           "nominal_resolutions", "projection_channels", "register_backbone", "register_deit"]
