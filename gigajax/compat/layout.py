"""Layout conversions between PyTorch (NCHW activations, OIHW conv weights) and gigajax
(NHWC activations, HWIO conv weights)."""

import numpy as np


def nchw_to_nhwc(x):
    return np.transpose(np.asarray(x), (0, 2, 3, 1))


def nhwc_to_nchw(x):
    return np.transpose(np.asarray(x), (0, 3, 1, 2))


def oihw_to_hwio(w):
    return np.transpose(np.asarray(w), (2, 3, 1, 0))


def hwio_to_oihw(w):
    return np.transpose(np.asarray(w), (3, 2, 0, 1))
