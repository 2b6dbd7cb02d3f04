"""The input pipeline: which items make up training step s, for this process, on which devices.

Determinism is the point. The items of global step s are a pure function of (seed, s):
    epoch    = s // steps_per_epoch
    order    = np.random.default_rng([seed, epoch]).permutation(num_items)
    indices  = order[(s % steps_per_epoch) * B : (s % steps_per_epoch + 1) * B]
with steps_per_epoch = num_items // B (the remainder of each epoch is dropped, so every step has
a full batch and every item appears at most once per epoch). A trainer resumed at step s gets
bit-identical batches without saving any iterator state, and the global batch does not depend
on the number of processes: process p of P takes rows [p*B/P, (p+1)*B/P).

xflip follows the official StyleGAN code: the dataset is doubled, item i >= N is the horizontal
mirror of item i - N, and both halves are shuffled together.
"""

from __future__ import annotations

import jax
import numpy as np

from gigajax.data.base import Source
from gigajax.data.errors import DataError
from gigajax.data.prefetch import PrefetchIterator


class Pipeline:
    """Deterministic, process-sharded batches of a `Source`.

    Args:
      source:        the dataset.
      global_batch:  B, items per training step summed over all processes.
      seed:          non-negative int; with the step it fixes every batch.
      xflip:         double the dataset with horizontal mirrors (see module doc).
      one_hot:       labels as float32 one-hot [b, c_dim] (True) or int32 class ids [b] (False).
      process_index, process_count: default jax.process_index() / jax.process_count().

    Attributes:
      resolution, channels, c_dim:  what the trainer needs for its DataSpec (c_dim = num_classes).
      num_items:        len(source), times 2 with xflip.
      steps_per_epoch:  num_items // global_batch.
      local_batch_size: global_batch // process_count.
    """

    def __init__(self, source: Source, global_batch: int, seed: int, *, xflip: bool = False, one_hot: bool = True,
                 process_index: int | None = None, process_count: int | None = None):
        self.source = source
        self.global_batch = _int_arg("global_batch", global_batch, 1)
        self.seed = _int_arg("seed", seed, 0)
        self.xflip = bool(xflip)
        self.one_hot = bool(one_hot)
        self.process_count = _int_arg("process_count", jax.process_count() if process_count is None else process_count, 1)
        self.process_index = _int_arg("process_index", jax.process_index() if process_index is None else process_index, 0)
        if self.process_index >= self.process_count:
            raise DataError(f"process_index={self.process_index}: expected < process_count={self.process_count}")
        self.num_items = len(source) * (2 if self.xflip else 1)
        if self.global_batch > self.num_items:
            raise DataError(f"global_batch={self.global_batch} is larger than the dataset {source.name!r} "
                            f"({self.num_items} items{', xflip doubled' if self.xflip else ''})")
        if self.global_batch % self.process_count:
            raise DataError(f"global_batch={self.global_batch}: expected a multiple of process_count={self.process_count}")
        self.local_batch_size = self.global_batch // self.process_count
        self.steps_per_epoch = self.num_items // self.global_batch
        self.resolution = source.resolution
        self.channels = source.channels
        self.c_dim = source.num_classes
        self._order = (None, None)  # (epoch, permutation) of the last epoch asked for

    def epoch_order(self, epoch: int) -> np.ndarray:
        """int64 [num_items]: the shuffled item order of `epoch` (items >= len(source) are mirrors)."""
        cached_epoch, order = self._order  # one read: the prefetch thread may replace it concurrently
        if cached_epoch != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.num_items)
            order.flags.writeable = False  # shared by every step of the epoch: callers must not shuffle it
            self._order = (epoch, order)
        return order

    def global_indices(self, step: int) -> np.ndarray:
        """int64 [global_batch]: the items of training step `step`, in batch order."""
        step = _int_arg("step", step, 0)
        epoch, k = divmod(step, self.steps_per_epoch)
        return self.epoch_order(epoch)[k * self.global_batch:(k + 1) * self.global_batch]

    def local_batch(self, step: int) -> dict[str, np.ndarray]:
        """This process's rows of step `step`: rows [p*b, (p+1)*b) of the global batch, b = B/P.

        Returns {'image': uint8 [b, H, W, C],
                 'label': float32 [b, c_dim] one-hot ([b, 0] when c_dim == 0), or with
                          one_hot=False int32 [b] class ids (all 0 when c_dim == 0)}.
        """
        start = self.process_index * self.local_batch_size
        return self.rows(step, start, start + self.local_batch_size)

    def rows(self, step: int, start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows [start, stop) of the global batch of `step`, in the format of `local_batch`."""
        indices = self.global_indices(step)[start:stop]
        n = len(self.source)
        raw, flip = indices % n, indices >= n
        images = self.source.images(raw)
        if flip.any():
            images[flip] = images[flip][:, :, ::-1]  # NHWC: axis 2 is width
        return {"image": images, "label": self._encode_labels(self.source.labels(raw), len(raw))}

    def _encode_labels(self, labels: np.ndarray | None, count: int) -> np.ndarray:
        if self.one_hot:
            if labels is None:
                return np.zeros((count, 0), np.float32)
            return np.eye(self.c_dim, dtype=np.float32)[labels]
        return np.zeros(count, np.int32) if labels is None else labels.astype(np.int32)

    def iterate(self, start_step: int = 0, sharding: jax.sharding.Sharding | None = None,
                prefetch: int = 2) -> PrefetchIterator:
        """Batches of steps start_step, start_step + 1, ... (endless), prefetched on a background thread.

        Without `sharding`, yields `local_batch(step)` (numpy). With a sharding that splits the
        batch dimension (e.g. NamedSharding(mesh, P('data'))), yields global jax.Arrays
        {'image': uint8 [B, H, W, C], 'label': [B, c_dim] or [B]} built with
        jax.make_array_from_process_local_data. Each process supplies exactly the rows its
        devices hold under the sharding (for a data-parallel mesh these are the local_batch
        rows), so the global array equals the global batch whatever the mesh's device order.
        The labels use the sharding's spec truncated to their rank.

        The returned iterator has close() and is a context manager; close it (or exhaust the
        `with`) to stop the thread. prefetch=0 produces each batch inline.
        """
        start_step = _int_arg("start_step", start_step, 0)
        prefetch = _int_arg("prefetch", prefetch, 0)
        if sharding is None:
            return PrefetchIterator(self.local_batch, start_step, prefetch)
        shape = (self.global_batch, self.resolution, self.resolution, self.channels)
        start, stop = process_rows(sharding, shape)
        label_sharding = _truncate_spec(sharding, 2 if self.one_hot else 1)

        def produce(step):
            local = self.rows(step, start, stop)
            return {"image": jax.make_array_from_process_local_data(sharding, local["image"], shape),
                    "label": jax.make_array_from_process_local_data(
                        label_sharding, local["label"], (self.global_batch, *local["label"].shape[1:]))}
        return PrefetchIterator(produce, start_step, prefetch)


def process_rows(sharding: jax.sharding.Sharding, shape: tuple[int, ...]) -> tuple[int, int]:
    """The contiguous range [start, stop) of batch rows this process's devices hold under `sharding`.

    Raises DataError when the batch does not divide over the sharded axis, or when this
    process's rows are not contiguous (a mesh layout the one-slice-per-process rule cannot feed).
    """
    try:
        index_map = sharding.addressable_devices_indices_map(shape)
    except ValueError as e:
        raise DataError(f"sharding {sharding} cannot split a batch of shape {shape}: {e}") from None
    ranges = sorted({index[0].indices(shape[0])[:2] for index in index_map.values()})
    start, stop = ranges[0][0], max(r[1] for r in ranges)
    covered = start
    for lo, hi in ranges:  # sorted, possibly overlapping (replicated) ranges must leave no gap
        if lo > covered:
            raise DataError(f"sharding {sharding}: this process's devices hold non-contiguous batch rows {ranges}")
        covered = max(covered, hi)
    return start, stop


def _truncate_spec(sharding, ndim: int):
    """A NamedSharding for rank-`ndim` arrays with the same batch split (other shardings pass through)."""
    if isinstance(sharding, jax.sharding.NamedSharding) and len(sharding.spec) > ndim:
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(*sharding.spec[:ndim]))
    return sharding


def _int_arg(name: str, value, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"{name}={value!r}: expected an integer >= {minimum}")
    return int(value)
