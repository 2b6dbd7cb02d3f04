"""TensorFlow Datasets through `tfds.data_source`: random access, no TensorFlow needed to read.

Spec: `tfds:NAME[/CONFIG][:SPLIT]`, split 'train' by default; TFDS split syntax such as
'train[:10%]' or 'train+test' works. Data is read from `$TFDS_DATA_DIR` or TFDS's default
(~/tensorflow_datasets). gigajax never downloads: random access needs the data prepared in
the ArrayRecord format, and preparing most image datasets needs TensorFlow (TFDS encodes
images with tf.image), which gigajax does not depend on. So an unprepared dataset is an error
that prints the one-off command to prepare it.

The dataset must have an 'image' feature of a fixed square shape (H, H, 1 or 3); a 'label'
ClassLabel feature, when present, gives the class ids and `num_classes`.
"""

from __future__ import annotations

import os

import numpy as np

from gigajax.data.base import Source
from gigajax.data.errors import DataError, DataNotFoundError

PREFIX = "tfds:"
DEFAULT_SPLIT = "train"


def parse_spec(spec: str) -> tuple[str, str]:
    """'tfds:cifar10:test' -> ('cifar10', 'test'); 'tfds:NAME[/CONFIG]' -> (NAME[/CONFIG], 'train').

    The name ends at the first ':' (TFDS names and configs never contain one), so split
    expressions with ':' such as 'train[:10%]' survive.
    """
    name, _, split = spec[len(PREFIX):].partition(":")
    if not name:
        raise DataError(f"{spec!r}: expected 'tfds:NAME[/CONFIG][:SPLIT]', e.g. 'tfds:cifar10' or 'tfds:mnist:test'")
    return name, split or DEFAULT_SPLIT


def data_dir() -> str:
    """$TFDS_DATA_DIR, read now (TFDS reads it once at import), else TFDS's default."""
    from tensorflow_datasets.core import constants
    return os.path.expanduser(os.environ.get("TFDS_DATA_DIR") or constants.DATA_DIR)


def prepare_command(name: str, directory: str) -> str:
    """The one-off shell command that prepares `name` where `open_tfds` looks for it."""
    return ("python -c \"import tensorflow_datasets as tfds; "
            f"tfds.builder('{name}', data_dir='{directory}', file_format='array_record').download_and_prepare()\"")


class TfdsSource(Source):
    """Images uint8 [n, R, R, C] and labels int64 [n] from a prepared TFDS split."""

    def __init__(self, spec: str, *, resolution: int | None = None, use_labels: bool = True):
        import tensorflow_datasets as tfds  # lazy: a second or so of imports most runs never need

        self.spec = spec
        name, split = parse_spec(spec)
        directory = data_dir()
        builder = _prepared_builder(tfds, spec, name, directory)
        self.resolution, self.channels = _image_shape(builder, spec)
        if resolution is not None and resolution != self.resolution:
            raise DataError(f"{spec}: images are {self.resolution}x{self.resolution} but resolution={resolution} "
                            "was requested; TFDS images are not resized (pick a resized variant, e.g. "
                            "'tfds:imagenet_resized/64x64')")
        features = builder.info.features
        label = features["label"] if use_labels and "label" in features else None
        self.num_classes = int(label.num_classes) if isinstance(label, tfds.features.ClassLabel) else 0
        if self.num_classes and label.names:
            self.class_names = tuple(label.names)
        try:
            self._data = tfds.data_source(name, split=split, data_dir=directory, download=False)
        except ValueError as e:  # unknown split, bad slice syntax
            raise DataError(f"{spec}: {e}") from None
        self.name = f"{name}:{split}"
        self._last = (None, None)

    def __len__(self) -> int:
        return len(self._data)

    def _read_images(self, idx):
        return np.stack([np.asarray(ex["image"], np.uint8) for ex in self._examples(idx)])

    def _read_labels(self, idx):
        return np.array([ex["label"] for ex in self._examples(idx)], np.int64)

    def _examples(self, idx) -> list:
        """Decoded examples of `idx`. The last batch is memoised because the pipeline asks for
        images and then labels of the same indices, and TFDS decodes every feature of an example."""
        key = idx.tobytes()
        last_key, examples = self._last
        if last_key != key:
            keys = [int(i) for i in idx]
            if hasattr(self._data, "__getitems__"):  # batched read: one pass over the ArrayRecord shards
                examples = list(self._data.__getitems__(keys))
            else:
                examples = [self._data[i] for i in keys]
            self._last = (key, examples)  # one assignment: safe against a concurrent reader
        return examples


def _prepared_builder(tfds, spec: str, name: str, directory: str):
    """The builder for `name`, or an error saying why it cannot be read (unknown, unprepared, no random access)."""
    try:
        builder = tfds.builder(name, data_dir=directory)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"{spec}: TFDS has no dataset {name!r} (neither a registered builder nor prepared files "
                        f"in {directory}); see https://www.tensorflow.org/datasets/catalog") from None
    if not builder.is_prepared():
        raise DataNotFoundError(
            f"{spec}: TFDS dataset {name!r} is not prepared in {directory} (set TFDS_DATA_DIR to read another "
            f"directory). gigajax does not download datasets. Prepare it once with\n    {prepare_command(name, directory)}\n"
            "Preparing image datasets needs TensorFlow (TFDS encodes the images with it), which gigajax does not "
            "install: `pip install tensorflow-cpu` first. Reading the prepared data afterwards does not need it.")
    file_format = getattr(builder.info, "file_format", None)
    random_access = {f.value for f in tfds.core.file_adapters.FileFormat.with_random_access()}
    if file_format is not None and getattr(file_format, "value", file_format) not in random_access:
        raise DataError(f"{spec}: {name!r} in {directory} was prepared as {getattr(file_format, 'value', file_format)}, "
                        f"which has no random access; prepare it again in ArrayRecord format:\n    "
                        f"{prepare_command(name, directory)}")
    return builder


def _image_shape(builder, spec: str) -> tuple[int, int]:
    """-> (resolution, channels) from the 'image' feature, which must be fixed, square, 1 or 3 channels."""
    features = builder.info.features
    if "image" not in features:
        raise DataError(f"{spec}: has no 'image' feature (features: {', '.join(features.keys())})")
    shape = tuple(features["image"].shape)
    if len(shape) != 3 or None in shape or shape[0] != shape[1] or shape[2] not in (1, 3):
        raise DataError(f"{spec}: 'image' has shape {shape}; gigajax needs a fixed square (R, R, 1 or 3) shape. "
                        "Pick a resized variant (e.g. 'tfds:imagenet_resized/64x64') or export to an image folder")
    return int(shape[0]), int(shape[2])
