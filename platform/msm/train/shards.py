"""Ray Train's ``DataConfig`` for pretraining: every worker reads its own corpus files, in order.

The default config (``streaming_split``) deals blocks to whichever worker asks first, so no checkpoint could say
which blocks a worker has seen. Here worker ``r`` gets a Ray Data iterator over its share
(:func:`msm.train.stream.share`) with ``preserve_order``: its stream is a function of the corpus, the seed, its rank
and the world size, and :class:`msm.train.stream.BatchStream` can replay it.

The files are named by the corpus manifest, so nothing is listed: :func:`msm.runtime.read_parquet_files` runs one
read task per file, each asking for :data:`msm.runtime.DATA_CPUS` (Ray's ``read_parquet`` would first run a listing
task asking for a whole CPU, which a small cluster with its workers placed cannot give: the run would wait forever).
"""

from __future__ import annotations

import ray.train
from ray.data import ExecutionOptions

from msm.runtime import DATA_CPUS, read_parquet_files
from msm.train.stream import share

COLUMNS = ["lang", "input_ids"]


class RankShards(ray.train.DataConfig):
    def __init__(self, root, files: list[str], seed: int) -> None:
        """``root``: the corpus :class:`~msm.uri.Location`; ``files``: its Parquet files (relative to it)."""
        super().__init__(datasets_to_split=[])
        self.root, self.files, self.seed = root, files, seed

    def configure(self, datasets, world_size, worker_handles, worker_node_ids, **kwargs):
        out = []
        for rank in range(world_size):
            files, _ = share(self.files, rank, world_size, self.seed)
            ds = read_parquet_files(self.root, files, COLUMNS, num_cpus=DATA_CPUS)
            ds.context.execution_options = ExecutionOptions(preserve_order=True)
            out.append({name: ds.iterator() for name in datasets})
        return out
