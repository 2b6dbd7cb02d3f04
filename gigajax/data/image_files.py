"""Image folders and zips in the layout of the official StyleGAN `dataset_tool.py`.

Images are all files with a .png/.jpg/.jpeg/.bmp/.webp extension (any case) anywhere under
the root, sorted by their '/'-separated relative path. Hidden entries (any path component
starting with '.', e.g. macOS '._x.png' forks) and '__MACOSX/' folders are skipped because they
are never images. An optional `dataset.json` at the root holds the labels (see `dataset_json`).

Opening reads every image header once (not the pixels), so a mixed-size or RGBA dataset fails
at once, naming the files, rather than hours into training. That costs roughly 0.1 ms per image
(some seconds for 70k FFHQ files). Pixels are decoded lazily, per batch, on a small thread pool
(PIL releases the GIL while decoding). Datasets whose decoded pixels fit in `cache_bytes`
(default 1 GiB: all of CIFAR-10 at 32x32 is 150 MiB) are kept in memory after their first
decode, so later epochs skip decoding.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import zipfile
from typing import BinaryIO

import numpy as np

from gigajax.data import dataset_json, image_decode
from gigajax.data.base import Source
from gigajax.data.errors import DataError, DataNotFoundError

DEFAULT_CACHE_BYTES = 1 << 30


class ImageFileSource(Source):
    """Lazily decoded images (uint8 [n, R, R, C]) from a folder or a .zip, labels from dataset.json.

    Args:
      path:        an existing folder, or a .zip file.
      resolution:  if given, the images must have exactly this size (they are not resized).
      use_labels:  read dataset.json; False gives num_classes == 0 even when it exists.
      cache_bytes: keep decoded images in memory when the whole dataset fits in this many bytes.
      num_threads: decode threads per batch (default min(8, CPU count)).
    """

    def __init__(self, path: str, *, resolution: int | None = None, use_labels: bool = True,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, num_threads: int | None = None):
        self.path = os.fspath(path)
        self._reader = _open_reader(self.path)
        try:
            self._setup(resolution, use_labels, cache_bytes, num_threads)
        except BaseException:
            self._reader.close()
            raise

    def _setup(self, resolution, use_labels, cache_bytes, num_threads):
        names = self._reader.names()
        self._image_names = sorted(n for n in names if image_decode.is_image_name(n))
        if not self._image_names:
            raise DataError(f"{self.path}: no images found (looked recursively for files ending in "
                            f"{', '.join(image_decode.IMAGE_EXTENSIONS)})")
        self.resolution, self.channels = _scan_headers(self._reader, self._image_names, self.path)
        if resolution is not None and resolution != self.resolution:
            raise DataError(f"{self.path}: images are {self.resolution}x{self.resolution} but resolution={resolution} "
                            "was requested; image folders and zips are not resized, so resize the files "
                            f"(e.g. dataset_tool.py --resolution) or request resolution={self.resolution}")
        self._labels = None
        if use_labels and dataset_json.LABELS_FILE in names:
            with self._reader.open(dataset_json.LABELS_FILE) as f:
                text = f.read()
            self._labels = dataset_json.parse_labels(text, self._image_names,
                                                     _where(self.path, dataset_json.LABELS_FILE))
        self.num_classes = int(self._labels.max()) + 1 if self._labels is not None else 0
        self.name = os.path.splitext(os.path.basename(os.path.normpath(self.path)))[0]
        self._shape = (self.resolution, self.resolution, self.channels)
        self._cache = self._cached = None
        if len(self) * int(np.prod(self._shape)) <= cache_bytes:
            # np.empty only reserves address space; pages are touched as images are decoded.
            self._cache = np.empty((len(self), *self._shape), np.uint8)
            self._cached = np.zeros(len(self), bool)
        self._num_threads = num_threads or min(8, os.cpu_count() or 1)
        self._pool = None
        self._pool_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._image_names)

    def _read_images(self, idx):
        out = np.empty((len(idx), *self._shape), np.uint8)
        todo = np.arange(len(idx)) if self._cache is None else np.flatnonzero(~self._cached[idx])
        if self._cache is not None:
            done = np.setdiff1d(np.arange(len(idx)), todo, assume_unique=True)
            out[done] = self._cache[idx[done]]
        for pos, image in zip(todo, self._map(self._decode_one, idx[todo])):
            out[pos] = image
        if self._cache is not None and len(todo):
            self._cache[idx[todo]] = out[todo]
            self._cached[idx[todo]] = True  # after the pixels, so a concurrent reader never sees a half-filled slot
        return out

    def _read_labels(self, idx):
        return self._labels[idx]

    def _decode_one(self, i) -> np.ndarray:
        name = self._image_names[int(i)]
        with self._reader.open(name) as f:
            return image_decode.decode(f, _where(self.path, name), self._shape)

    def _map(self, fn, items):
        """fn over items on the decode pool (serially for a single item or a single thread)."""
        if len(items) <= 1 or self._num_threads <= 1:
            return [fn(item) for item in items]
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self._num_threads, thread_name_prefix="gigajax-decode")
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        self._reader.close()


def _where(path: str, name: str) -> str:
    """How messages name a file inside the dataset: '/data/ffhq.zip:00000/img00000000.png'."""
    return f"{path}:{name}" if path.lower().endswith(".zip") else os.path.join(path, name)


def _scan_headers(reader, names: list[str], path: str) -> tuple[int, int]:
    """Read every header -> (resolution, channels); all images must share one square size and channel count."""
    first = names[0]
    with reader.open(first) as f:
        w0, h0, c0, mode0 = image_decode.read_header(f, _where(path, first))
    if w0 != h0:
        raise DataError(f"{_where(path, first)} is {w0}x{h0} (WxH); gigajax needs square images. Crop or resize "
                        "them first, e.g. dataset_tool.py --transform=center-crop --resolution=RxR")
    for name in names[1:]:
        with reader.open(name) as f:
            w, h, c, mode = image_decode.read_header(f, _where(path, name))
        if (w, h) != (w0, h0):
            raise DataError(f"{path}: images differ in size: {first!r} is {w0}x{h0} but {name!r} is {w}x{h} "
                            "(all images must share one square size)")
        if c != c0:
            raise DataError(f"{path}: images differ in channel count: {first!r} has {c0} (PIL mode {mode0!r}) "
                            f"but {name!r} has {c} (PIL mode {mode!r}); convert them all to L or all to RGB")
    return w0, c0


def _open_reader(path: str):
    if os.path.isdir(path):
        return _FolderReader(path)
    if os.path.isfile(path) and path.lower().endswith(".zip"):
        return _ZipReader(path)
    if os.path.exists(path):
        raise DataError(f"{path}: expected an image folder or a .zip file")
    raise DataNotFoundError(f"{path}: no such folder or .zip file")


def _skipped(name: str) -> bool:
    """Hidden files/folders and macOS zip metadata are never dataset images."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


class _FolderReader:
    """Names ('/'-separated, relative to root) and binary file objects of a folder tree."""

    def __init__(self, root: str):
        self.root = root

    def names(self) -> list[str]:
        out = []
        for parent, _dirs, files in os.walk(self.root, followlinks=True):
            rel = os.path.relpath(parent, self.root)
            for fname in files:
                name = fname if rel == "." else f"{rel}/{fname}".replace(os.sep, "/")
                if not _skipped(name):
                    out.append(name)
        return out

    def open(self, name: str) -> BinaryIO:
        return open(os.path.join(self.root, *name.split("/")), "rb")

    def close(self) -> None:
        pass


class _ZipReader:
    """The same for a zip. zipfile serialises reads of its shared handle with a lock, so the
    decode threads may open members concurrently."""

    def __init__(self, path: str):
        try:
            self._zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise DataError(f"{path}: not a readable zip file ({e})") from None

    def names(self) -> list[str]:
        return [n for n in self._zip.namelist() if not n.endswith("/") and not _skipped(n)]

    def open(self, name: str) -> BinaryIO:
        return self._zip.open(name, "r")

    def close(self) -> None:
        self._zip.close()
