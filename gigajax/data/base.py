"""The `Source` interface: random access to one dataset's images and integer labels.

A source knows nothing about batches, epochs, shuffling or processes (that is `Pipeline`'s job);
it only answers "give me items i, j, k". Images are uint8 NHWC with H == W, the layout the
trainer converts to float32 [-1, 1]. Labels are int64 class ids; one-hot encoding happens in the
pipeline because the sources would otherwise each have to agree on `c_dim`.
"""

from __future__ import annotations

import numpy as np

from gigajax.data.errors import DataError


def as_indices(indices, size: int) -> np.ndarray:
    """Validate item indices for a source of `size` items -> int64 [n] (a new array).

    Raises IndexError naming the first out-of-range index, because a wrong index deep inside a
    prefetch thread is otherwise a bare numpy error with no hint of which dataset it hit.
    """
    idx = np.asarray(indices)
    if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
        raise IndexError(f"indices: expected a 1-D array of integers, got shape {idx.shape} dtype {idx.dtype}")
    idx = idx.astype(np.int64)
    bad = (idx < 0) | (idx >= size)
    if bad.any():
        raise IndexError(f"index {int(idx[bad][0])} is out of range for a source of {size} items")
    return idx


class Source:
    """Random-access dataset of square uint8 images and optional integer class labels.

    Attributes (set by subclasses):
      name:        short dataset name (for logs and run directories).
      resolution:  image height == width, in pixels.
      channels:    1 (grayscale) or 3 (RGB).
      num_classes: number of label classes, 0 when the source is unlabelled or opened with
                   use_labels=False.
      class_names: tuple of num_classes names when the dataset has them, else None.

    Subclasses implement `__len__`, `_read_images` and (when num_classes > 0) `_read_labels`;
    the public methods validate indices first, so subclasses may index without checks.
    """

    name: str
    resolution: int
    channels: int
    num_classes: int
    class_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def images(self, indices) -> np.ndarray:
        """indices int [n] (duplicates allowed) -> uint8 [n, H, W, C], a new array the caller owns."""
        return self._read_images(as_indices(indices, len(self)))

    def labels(self, indices) -> np.ndarray | None:
        """indices int [n] -> int64 [n] class ids in [0, num_classes), or None when num_classes == 0."""
        if self.num_classes == 0:
            return None
        return self._read_labels(as_indices(indices, len(self)))

    def close(self) -> None:
        """Release open files and worker threads (no-op for in-memory sources)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, len={len(self)}, resolution={self.resolution}, "
                f"channels={self.channels}, num_classes={self.num_classes})")

    def _read_images(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _read_labels(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class ArraySource(Source):
    """A source held in memory: images uint8 [N, R, R, C], labels int64 [N] or None.

    Used for the small embedded datasets, and handy in tests and notebooks.
    """

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray | None, num_classes: int,
                 class_names=None):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != images.shape[2] \
                or images.shape[3] not in (1, 3):
            raise DataError(f"{name}: images: expected uint8 [N, R, R, C] with C in (1, 3), "
                            f"got {images.dtype} {images.shape}")
        if labels is not None:
            labels = check_labels(name, labels, len(images), num_classes)
        elif num_classes != 0:
            raise DataError(f"{name}: num_classes={num_classes} but no labels were given")
        self.name = name
        self._images = images
        self._labels = labels
        self.resolution = int(images.shape[1])
        self.channels = int(images.shape[3])
        self.num_classes = int(num_classes) if labels is not None else 0
        if class_names is not None and self.num_classes:
            if len(class_names) != self.num_classes:
                raise DataError(f"{name}: {len(class_names)} class_names for num_classes={self.num_classes}")
            self.class_names = tuple(str(c) for c in class_names)

    def __len__(self) -> int:
        return len(self._images)

    def _read_images(self, idx):
        return self._images[idx]  # fancy indexing copies, so callers may flip in place

    def _read_labels(self, idx):
        return self._labels[idx]


def check_labels(name: str, labels, count: int, num_classes: int) -> np.ndarray:
    """Validate class labels for `count` images -> int64 [count], every value in [0, num_classes)."""
    labels = np.asarray(labels)
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{name}: labels: expected integers of shape ({count},) (one per image), "
                        f"got {labels.dtype} {labels.shape}")
    labels = labels.astype(np.int64)
    if count and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{name}: labels must lie in [0, {num_classes}), got min {labels.min()} max {labels.max()}")
    return labels
