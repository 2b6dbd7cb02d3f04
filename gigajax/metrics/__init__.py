"""The metrics the field reports, on the standard networks.

  inception       the FID Inception-v3 (TF 2015-12-05 graph) in Flax, with TF1's resize
  features        sharded, batched feature extraction; cached dataset features; generators
  fid, kid, inception_score, precision_recall   the statistics on those features
  lpips, ppl      LPIPS (VGG16 / AlexNet) and StyleGAN's perceptual path length
  equivariance    StyleGAN3's EQ-T / EQ-T_frac / EQ-R PSNRs and their image operators
  spectrum        average power spectra of image sets (StyleGAN3's avg_spectra), heatmaps, profiles
  swd, ms_ssim    ProGAN's sliced Wasserstein distance on Laplacian-pyramid patches and MS-SSIM diversity
  bits_per_dim    the likelihood unit of the VAEs
  compute         NVlabs-style names ('fid50k_full', 'kid10k', 'ppl2_wend', 'eqt50k_int', 'swd16k',
                  'msssim20k') for a generator
CLI: `python -m gigajax.metrics fid|kid|pr PATH_A PATH_B`, `python -m gigajax.metrics is PATH`.
"""

from gigajax.metrics.bits_per_dim import bits_per_dim
from gigajax.metrics.compute import GeneratorSpec, compute_metrics, parse_metric
from gigajax.metrics.equivariance import equivariance_psnr
from gigajax.metrics.features import FeatureExtractor, dataset_features, to_uint8
from gigajax.metrics.fid import feature_stats, fid_from_features, frechet_distance
from gigajax.metrics.inception_score import inception_score
from gigajax.metrics.kid import kernel_inception_distance
from gigajax.metrics.ms_ssim import ms_ssim, msssim_diversity
from gigajax.metrics.precision_recall import precision_recall
from gigajax.metrics.spectrum import mean_power_spectrum
from gigajax.metrics.swd import sliced_wasserstein_distance

__all__ = ["FeatureExtractor", "GeneratorSpec", "bits_per_dim", "compute_metrics", "dataset_features",
           "equivariance_psnr", "feature_stats", "fid_from_features", "frechet_distance", "inception_score",
           "kernel_inception_distance", "mean_power_spectrum", "ms_ssim", "msssim_diversity", "parse_metric",
           "precision_recall", "sliced_wasserstein_distance", "to_uint8"]
