"""The ``run:`` block every Ray Train job shares (:class:`RunSettings`), extended by pretraining
(:class:`msm.train.config.PretrainRun`) and fine-tuning (:class:`msm.finetune.config.FinetuneRun`); a sweep's trials
are pretraining runs, and the sweep itself extends :class:`OutputSettings`.

Named ``*Settings``/``*Run`` (it was ``RunConfig`` in two modules) so it never reads as Ray Train's own
``ray.train.RunConfig`` / ``DataConfig``, which :func:`msm.runtime.torch_trainer` builds from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OutputSettings:
    """Where a job writes (a local folder or a URI; the verbs' ``--out``) and the name of its Ray run there."""

    output_dir: str = "outputs/run"
    name: str = "run"


@dataclass
class RunSettings(OutputSettings):
    """A Ray Train run: its workers, checkpoints, retries, the resource checks (:mod:`msm.runtime`)."""

    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    placement_strategy: str = "PACK"  # Ray Train's: PACK (as few nodes as fit), SPREAD (one worker per node where
    #                                   it can), STRICT_PACK, STRICT_SPREAD
    keep_checkpoints: int = 2
    max_failures: int = 0  # Ray Train FailureConfig: the worker group restarts from the latest checkpoint
    tensorboard: bool = True  # event files in <output_dir>/tensorboard (rank 0)
    fail_at_step: int | None = None  # fault drill: raise at this step in a run that did not restore a checkpoint
    stall_after_s: float = 300.0  # no step for this long while Ray cannot schedule a demand: the progress line
    #                               says so (--fail-on-stall: the run ends with that error)
    wait_for_nodes: bool = False  # an autoscaling cluster: a job larger than the nodes up now waits for new nodes
    #                               instead of failing before it starts (msm.runtime.check_fits)

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.cpus_per_worker < 0:
            raise ValueError("need num_workers >= 1 and cpus_per_worker >= 0")
        if self.placement_strategy not in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
            raise ValueError(f"placement_strategy {self.placement_strategy!r}: use PACK, SPREAD, STRICT_PACK or "
                             "STRICT_SPREAD")
        if self.stall_after_s <= 0:
            raise ValueError("stall_after_s must be > 0 (seconds)")
        if self.keep_checkpoints < 1 or self.max_failures < 0:
            raise ValueError("need keep_checkpoints >= 1 and max_failures >= 0")
