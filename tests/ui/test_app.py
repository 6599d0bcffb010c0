"""The Streamlit app with ``streamlit.testing.v1.AppTest``: every page renders, search finds the known
translation, bad input gets a message and the app keeps running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from ui_fixtures import E5_NTREX_LANGS, E5_NTREX_LINES

from msm.ui.render import escape_markdown

APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")
pytestmark = pytest.mark.timeout(120)


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(at) -> list[str]:
    return [t.value for t in at.text]


def test_runs_page_shows_training_sweep_and_eval(data_root):
    at = _app().switch_page("pages/runs.py").run()
    assert not at.exception and not at.error
    assert [m.label for m in at.metric] == ["step", "loss", "acc_same_doc", "sentences_per_s"]
    assert at.metric[0].value == "5"
    assert any("1 unreadable lines skipped" in w.value for w in at.warning)
    assert at.selectbox(key="knob").options == ["config/lr", "config/mask_ratio"]
    frames = [d.value for d in at.dataframe]
    assert any(list(f.columns[:2]) == ["trial_id", "config/lr"] for f in frames)
    pivot = next(f for f in frames if "e5-small" in f.columns)
    assert pivot[["e5-small", "msm-tiny"]].values.tolist() == [[0.95, 0.5]]


def test_alignment_page_shows_pairs_and_heatmap(data_root):
    at = _app().switch_page("pages/alignment.py").run()
    assert not at.exception and not at.error, at.error
    rows = at.dataframe[0].value
    assert rows["source sentence"].tolist()[1] == "It was tired. Then it slept."
    assert rows["source sentence"].tolist()[0] == "The <b>cat</b> sat."  # a cell, never HTML
    assert at.text_input(key="heat_model").value == "tiny-random"
    assert len(at.get("image")) == 1  # st.pyplot
    at.selectbox(key="mined_choice").select("other folder…").run()
    at.text_input(key="mined_path").input("/etc").run()
    assert "outside the configured data roots" in at.error[0].value.replace("\\", "")
    assert not at.exception


def test_search_page_bad_inputs_keep_the_app_running(data_root, monkeypatch):
    at = _app()
    assert "Build / load index" in at.info[0].value
    at.radio(key="source").set_value("Saved index").run()
    at.text_input(key="saved_path").input("/etc").run()
    at.button(key="build").click().run()
    assert "outside the configured data roots" in at.error[0].value.replace("\\", "")
    (data_root / "not-an-index").mkdir()
    at.text_input(key="saved_path").input(str(data_root / "not-an-index")).run()
    at.button(key="build").click().run()
    assert "not a saved UI index" in at.error[0].value.replace("\\", "")
    at.text_input(key="model_a").input("/root/.ssh").run()
    at.radio(key="source").set_value("NTREX sentences").run()
    at.button(key="build").click().run()
    assert any("outside the configured data roots" in e.value.replace("\\", "") for e in at.error)
    assert not at.exception


def test_search_finds_the_translation_and_handles_bad_queries(e5_small, shared_data, data_root, monkeypatch):
    monkeypatch.setenv("MSM_UI_DATA_ROOTS", os.pathsep.join([str(data_root), str(shared_data)]))
    monkeypatch.setenv("MSM_DATA_DIR", str(shared_data))
    monkeypatch.setenv("MSM_UI_MODEL", "e5-small")
    at = _app()
    at.multiselect(key="ntrex_langs").set_value(E5_NTREX_LANGS)
    at.number_input(key="ntrex_lines").set_value(E5_NTREX_LINES)
    at.button(key="build").click().run()
    assert not at.error and "48 passages" in at.success[0].value
    english = (shared_data / "ntrex" / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    german = (shared_data / "ntrex" / "newstest2019-ref.deu.txt").read_text(encoding="utf-8").splitlines()
    at.multiselect(key="lang_filter").set_value(["de"])
    at.text_input(key="query").input(english[2]).run()
    texts = _texts(at)
    assert texts[0].startswith("#1  score") and "lang de" in texts[0] and texts[1] == german[2]
    assert any(c.value.startswith("latency ") for c in at.caption)

    for bad, message in (("   ", None), ("x" * 102_400, "102,400 characters")):
        at.text_input(key="query").input(bad).run()
        assert not at.exception and not _texts(at)  # no hits shown
        if message:
            assert message in at.warning[0].value
    html = '<script>alert(1)</script><b>Muppets</b>'
    at.multiselect(key="lang_filter").set_value([])
    at.text_input(key="query").input(html).run()
    assert not at.exception and len(_texts(at)) == 2 * 5
    assert all(html not in m.value for m in at.markdown)  # the query is never rendered as raw Markdown/HTML
    assert escape_markdown(f"Results for: {html}", 1500) in [c.value for c in at.caption]  # echoed, escaped

    at.checkbox(key="compare").check().run()
    at.text_input(key="model_b").input("tiny-random").run()
    at.button(key="build").click().run()
    at.text_input(key="query").input(english[2]).run()
    assert [s.value for s in at.subheader] == ["e5\\-small", "tiny\\-random"] and len(_texts(at)) == 2 * 2 * 5
    line2 = {(shared_data / "ntrex" / f"newstest2019-ref.{lang}.txt").read_text(encoding="utf-8").splitlines()[2]
             for lang in E5_NTREX_LANGS}
    assert _texts(at)[1] in line2  # e5-small's column (left) ranks a translation of the query first
