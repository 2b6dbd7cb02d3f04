"""Which image files gigajax accepts, and decoding one of them to uint8 HWC.

The channel rule (the same idea as the official dataset_tool, which accepts only grayscale and
RGB):
- mode 'L' -> 1 channel, 'RGB' -> 3 channels, as stored;
- mode '1' (bilevel) -> converted to 'L' (1 channel, values 0/255);
- mode 'P' (palette) without transparency -> converted to 'RGB' (3 channels);
- anything with alpha ('RGBA', 'LA', 'PA', a palette with a transparent entry) is rejected:
  what a transparent pixel should become (black? white? the mean?) is the user's decision,
  and silently dropping alpha often leaves garbage colour under transparent pixels;
- other modes (16-bit 'I;16', 'I', 'F', 'CMYK', ...) are rejected: convert them to 8-bit L/RGB.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
import PIL.Image

from gigajax.data.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

_CHANNELS = {"L": 1, "RGB": 3}


def is_image_name(name: str) -> bool:
    """True for a supported image extension, case-insensitive."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def mode_rule(image: PIL.Image.Image, where: str) -> tuple[int, str | None]:
    """An opened (not necessarily loaded) image -> (channels, mode to convert to or None).

    Raises DataError naming `where` and the mode for anything the module doc rejects.
    """
    mode = image.mode
    if mode in _CHANNELS:
        return _CHANNELS[mode], None
    if mode == "1":
        return 1, "L"
    if mode == "P" and "transparency" not in image.info:
        return 3, "RGB"
    if mode in ("RGBA", "LA", "PA", "P"):  # 'P' here has a transparent palette entry
        raise DataError(f"{where}: has an alpha channel (PIL mode {mode!r}{', transparent palette' if mode == 'P' else ''}); "
                        "gigajax reads grayscale (L) and RGB images only. Flatten the images onto a background "
                        "first, e.g. PIL.Image.alpha_composite(PIL.Image.new('RGBA', im.size, 'white'), "
                        "im.convert('RGBA')).convert('RGB')")
    raise DataError(f"{where}: PIL mode {mode!r} is not supported; gigajax reads 8-bit grayscale (L) "
                    "and RGB images only. Convert the images, e.g. im.convert('RGB')")


def read_header(fileobj: BinaryIO, where: str) -> tuple[int, int, int, str]:
    """Parse only the header -> (width, height, channels, PIL mode); no pixel data is decoded."""
    try:
        with PIL.Image.open(fileobj) as image:
            channels, _ = mode_rule(image, where)
            return image.width, image.height, channels, image.mode
    except (PIL.UnidentifiedImageError, OSError, SyntaxError) as e:  # PIL raises SyntaxError for some corrupt files
        raise DataError(f"{where}: cannot read the image ({e})") from None


def decode(fileobj: BinaryIO, where: str, shape: tuple[int, int, int]) -> np.ndarray:
    """Decode one file -> uint8 [H, W, C], checked against the dataset's `shape` (H, W, C).

    The check repeats the open-time header scan because files can change after the source
    was opened, and a wrong shape would otherwise surface as a broadcast error in a batch copy.
    """
    try:
        with PIL.Image.open(fileobj) as image:
            _, convert = mode_rule(image, where)
            array = np.asarray(image.convert(convert) if convert else image)
    except (PIL.UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"{where}: cannot decode the image ({e})") from None
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape != tuple(shape) or array.dtype != np.uint8:
        raise DataError(f"{where}: decoded to {array.dtype} {array.shape} but the dataset is uint8 {tuple(shape)} "
                        "(did the file change after the dataset was opened?)")
    return array
