"""pytest plugin of the mutation run only (``tools/mutation.py`` loads it with ``-p mutation_plugin``).

* Deselects the tests that start Ray, drive a browser or load e5-small (by fixture and marker, so renamed tests
  stay out) and the few unit tests that take many seconds each (``SLOW``): mutmut re-runs, for every mutant, the
  tests that call the mutated function, so one slow test multiplies by hundreds of mutants.
* Builds the tiny random XLM-R of ``tests/conftest.py::tiny_model_dir`` once per mutation run instead of once per
  mutant (each mutant is a fresh pytest session in a forked process).
"""

from __future__ import annotations

from pathlib import Path

HEAVY_FIXTURES = {"ray_local", "head", "e5_encoder"}  # head: a private `ray start --head` (tests/cluster)
HEAVY_MARKERS = ("ray", "browser")
SLOW = {
    "test_fifty_steps_halve_the_loss",  # 50 optimiser steps of the tiny model
    "test_save_load_round_trip_and_hf_folder",
    "test_msm_eval_runs_the_three_tasks_with_the_tiny_model",
    "test_resume_without_state_fails_clearly",
    "test_report_sorts_exports_best_config_and_plots",
}
CACHE = Path(__file__).resolve().parent / ".tiny-xlmr"


def pytest_configure(config) -> None:
    import msm.encoders.tiny as tiny

    build = tiny.build_tiny_model

    def cached(out_dir, **kwargs):
        return build(CACHE) if not kwargs else build(out_dir, **kwargs)

    tiny.build_tiny_model = cached


def pytest_collection_modifyitems(config, items) -> None:
    keep, drop = [], []
    for item in items:
        heavy = (set(getattr(item, "fixturenames", ())) & HEAVY_FIXTURES
                 or any(item.get_closest_marker(m) for m in HEAVY_MARKERS)
                 or getattr(item, "originalname", item.name) in SLOW)
        (drop if heavy else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
