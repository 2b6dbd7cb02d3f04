"""Datasets and the sharded input pipeline.

    source = open_source('mnist5k')                 # or a folder, a .zip, 'tfds:cifar10'
    pipe = Pipeline(source, global_batch=64, seed=0, xflip=True)
    with pipe.iterate(start_step, NamedSharding(mesh, P('data'))) as batches:
        for step, batch in zip(range(start_step, total), batches):
            ...  # batch['image'] uint8 [B, R, R, C], batch['label'] float32 [B, c_dim]

`gigajax.data` imports nothing else of gigajax except `gigajax.assets` (lazily, for the embedded
sets): data flows into `train`, never back.
"""

from gigajax.data.base import ArraySource, Source
from gigajax.data.errors import DataError, DataNotFoundError
from gigajax.data.pipeline import Pipeline
from gigajax.data.prefetch import PrefetchIterator
from gigajax.data.sources import open_source

__all__ = ["ArraySource", "DataError", "DataNotFoundError", "Pipeline", "PrefetchIterator", "Source", "open_source"]
