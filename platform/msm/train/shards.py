"""Ray Train's ``DataConfig`` for pretraining: every worker reads its own corpus files, in order.

The default config (``streaming_split``) deals blocks to whichever worker asks first, so no checkpoint could say
which blocks a worker has seen. Here worker ``r`` gets a Ray Data iterator over its share
(:func:`msm.train.stream.share`) with ``preserve_order``: its stream is a function of the corpus, the seed, its rank
and the world size, and :class:`msm.train.stream.BatchStream` can replay it.
"""

from __future__ import annotations

import posixpath

import ray.data
import ray.train
from ray.data import ExecutionOptions

from msm.train.stream import DATA_CPUS, share


class RankShards(ray.train.DataConfig):
    def __init__(self, root: str, files: list[str], seed: int, filesystem) -> None:
        super().__init__(datasets_to_split=[])
        self.root, self.files, self.seed, self.filesystem = root, files, seed, filesystem

    def configure(self, datasets, world_size, worker_handles, worker_node_ids, **kwargs):
        out = []
        for rank in range(world_size):
            files, _ = share(self.files, rank, world_size, self.seed)
            ds = ray.data.read_parquet([posixpath.join(self.root, f) for f in files],
                                       filesystem=self.filesystem, num_cpus=DATA_CPUS
                                       ).select_columns(["lang", "input_ids"])
            ds.context.execution_options = ExecutionOptions(preserve_order=True)
            out.append({name: ds.iterator() for name in datasets})
        return out
