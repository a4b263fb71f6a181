"""The streaming loader (docs/loader.md): committed shards on any fsspec store -> [T, B] torch batches.

    from dreamstream.datasets.loader import LoaderConfig, make_loader, to_device

Modules, one job each: batch (the batch fields, dtypes, to_device), config (settings), shards (who reads
which shard: epoch split, follow source), tbtt / windows (plan batches from commit-record metadata), fetch
(our fsspec opener, retries, decoding), executor (fetch ahead, copy pieces into tensors), stream (one
reader's webdataset pipeline), loader (the trainer-side iterator, position, metrics), bench
(`dreamstream bench loader`).
"""

from dreamstream.datasets.loader.batch import EPISODE_ID, EPISODE_STEP, LOADER_FIELDS, RESET, VALID, to_device
from dreamstream.datasets.loader.config import LoaderConfig
from dreamstream.datasets.loader.fetch import register_gopen
from dreamstream.datasets.loader.loader import StreamingLoader, make_loader
from dreamstream.datasets.loader.plan import episode_hash

# webdataset's own gs:// opener shells out to gsutil and it has none for s3://: point both at fsspec.
register_gopen()

__all__ = [
    "EPISODE_ID",
    "EPISODE_STEP",
    "LOADER_FIELDS",
    "RESET",
    "VALID",
    "LoaderConfig",
    "StreamingLoader",
    "episode_hash",
    "make_loader",
    "register_gopen",
    "to_device",
]
