"""Runs: pretraining curves, Tune sweep tables and knob-vs-metric plots, evaluation tables."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from common import guarded_dir, roots_caption, safe, settings
from msm.errors import MSMError
from msm.ui.paths import find_dirs
from msm.ui.runs import (TRAIN_FILES, TUNE_FILES, curves, eval_pivot, is_eval_file, is_tune_dir,
                                 load_eval_results, load_training_metrics, load_tune_results, metric_columns)

cfg = settings()
st.title("Runs")
roots_caption(cfg)
train_tab, tune_tab, eval_tab = st.tabs(["Pretraining", "Tune sweeps", "Evaluation"])


def pick(label: str, marker: tuple[str, ...], key: str, accept=lambda d: True):
    found = [d for d in find_dirs(cfg.roots, marker) if accept(d)]
    if not found:
        st.info(f"No {label} under the data roots (looked for {', '.join(marker)}).")
        return None
    return guarded_dir(st.selectbox(label, [str(d) for d in found], key=key), cfg)


with train_tab:
    run_dir = pick("Pretraining run", TRAIN_FILES, "train_run")
    if run_dir is not None:
        try:
            table = load_training_metrics(run_dir)
        except MSMError as exc:
            st.error(safe(str(exc)), icon=":material/block:")
        else:
            frame = table.frame
            last = frame.iloc[-1]
            cols = st.columns(4)
            for col, name in zip(cols, ["step", "loss", "acc_same_doc", "sentences_per_s"]):
                if name in frame:
                    col.metric(name, f"{last[name]:.4g}")
            if table.skipped:
                st.warning(safe(f"{len(table.skipped)} unreadable lines skipped, first: {table.skipped[0]}"))
            x = "step" if "step" in frame else None
            charts = curves(frame)
            for title, ys in charts.items():
                st.markdown(f"**{title}**")
                st.line_chart(frame, x=x, y=ys, height=220)
            if not charts:
                st.info("No known metric columns (loss, acc_same_doc, sentences_per_s...) in this run.")
            with st.expander("All rows"):
                st.dataframe(frame, hide_index=True)

with tune_tab:
    sweep = pick("Tune sweep", TUNE_FILES, "tune_dir", is_tune_dir)
    if sweep is not None:
        try:
            table = load_tune_results(sweep)
        except MSMError as exc:
            st.error(safe(str(exc)), icon=":material/block:")
        else:
            st.dataframe(table.frame, hide_index=True)
            metrics = metric_columns(table)
            if table.knobs and metrics:
                c1, c2 = st.columns(2)
                knob = c1.selectbox("Knob", table.knobs, key="knob")
                metric = c2.selectbox("Metric", metrics, key="metric")
                st.scatter_chart(table.frame, x=knob, y=metric, height=300)
            else:
                st.info("No knob columns (config/...) or numeric metrics to plot.")
            for png in table.plots:
                st.image(str(png), caption=png.name)

with eval_tab:
    files = [d / "results.json" for d in find_dirs(cfg.roots, "results.json") if is_eval_file(d / "results.json")]
    chosen = st.multiselect("Evaluation results", [str(f) for f in files], [str(f) for f in files], key="eval_files")
    if chosen:
        paths = [p for p in (guarded_dir(str(Path(f).parent), cfg) for f in chosen) if p]
        try:
            frame = load_eval_results([p / "results.json" for p in paths])
        except MSMError as exc:
            st.error(safe(str(exc)), icon=":material/block:")
        else:
            if frame.empty:
                st.info("The chosen files hold no (task, language, metric, value) records.")
            else:
                st.dataframe(eval_pivot(frame).reset_index(), hide_index=True)
                with st.expander("Records"):
                    st.dataframe(frame, hide_index=True)
    else:
        st.info("No msm eval results.json under the data roots.")
