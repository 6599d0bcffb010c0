"""Ray Tune sweeps over MSM pretraining knobs (negative sampling, temperature, masking, batching, lr ...).

``msm tune --config configs/tune/tiny-cpu.yaml`` · see docs/tune.md. :func:`load_sweep` validates a sweep YAML
(no Ray needed); :func:`run_sweep` runs or resumes it and writes the sorted table, the best config and a plot.
"""

from msm.tune.config import AshaConfig, Knob, Sweep, SweepConfig, build_sweep, load_sweep, parse_space

__all__ = ["AshaConfig", "Knob", "Sweep", "SweepConfig", "build_sweep", "load_sweep", "parse_space", "run_sweep"]


def run_sweep(*args, **kwargs):
    """See :func:`msm.tune.runner.run_sweep` (imported lazily: it pulls in Ray Tune)."""
    from msm.tune.runner import run_sweep as _run  # lazy: pyarrow, ray

    return _run(*args, **kwargs)
