"""Tatoeba: accuracy@1 both directions per language and their mean, against nearest neighbours counted by hand."""

from __future__ import annotations


import numpy as np
import pytest

from msm.errors import MSMError
from msm.eval.tasks import tatoeba

from eval_fakes import NormalisingTableEncoder, TableEncoder


def nn_accuracy(x, y) -> float:
    hits = 0
    for i, v in enumerate(x):
        scores = [float(v @ w) for w in y]
        hits += scores.index(max(scores)) == i
    return hits / len(x)


def test_tatoeba_accuracy_counts_diagonal_hits():
    """sims = x @ y.T is not symmetric: every row's best column is its own (x→y: 3/3), but column 1's best row is
    row 0 (y→x: 2/3). Kills ``argmax(axis=0)``, which would swap "xxx→eng" and "eng→xxx"."""
    sims = np.array([[1.0, 0.9, 0.8], [0.0, 0.5, 0.2], [0.0, 0.0, 1.0]], dtype=np.float32)
    x, y = np.eye(3, dtype=np.float32), sims.T
    assert tatoeba.accuracy(x, y) == pytest.approx(1.0)
    assert tatoeba.accuracy(y, x) == pytest.approx(2 / 3)


def test_tatoeba_evaluate_labels_the_directions(tmp_path):
    """xx line i is nearest to eng line i for all 3 lines; eng line 1 is nearest to xx line 0 (see above)."""
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    (folder / "tatoeba.xx-eng.xx").write_text("a0\na1\na2\n")
    (folder / "tatoeba.xx-eng.eng").write_text("e0\ne1\ne2\n")
    sims = np.array([[1.0, 0.9, 0.8], [0.0, 0.5, 0.2], [0.0, 0.0, 1.0]])
    table = {f"a{i}": np.eye(3)[i] for i in range(3)} | {f"e{i}": sims[:, i] for i in range(3)}
    got = {(r.language, r.metric): r.value for r in tatoeba.evaluate(TableEncoder(table), tmp_path)}
    assert got[("xx", "acc@1 xxx->eng")] == pytest.approx(1.0) and got[("xx", "acc@1 eng->xxx")] == pytest.approx(2 / 3)
    assert got[("mean", "acc@1 eng->xxx")] == pytest.approx(2 / 3)


def test_e5_small_on_tatoeba_slice_is_accurate(e5_encoder, shared_data):
    results = tatoeba.evaluate(e5_encoder, shared_data, langs=["deu"], limit=100)
    acc = next(r.value for r in results if r.language == "deu" and r.metric == "acc@1 xxx->eng")
    assert acc >= 0.95


def test_tatoeba_both_directions_per_language_and_mean(tmp_path):
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    rng = np.random.default_rng(0)
    table, truth = {}, {}
    for lang, n in (("fra", 5), ("deu", 4)):
        src = [f"{lang} sentence {i}" for i in range(n - 1)] + [f"{lang} ends with X"]
        eng = [f"eng {lang} sentence {i}" for i in range(n - 1)] + [f"English {lang} ends with X"]
        (folder / f"tatoeba.{lang}-eng.{lang}").write_text("\n".join(src) + "\n", encoding="utf-8")
        (folder / f"tatoeba.{lang}-eng.eng").write_text("\n".join(eng) + "\n", encoding="utf-8")
        x, y = rng.normal(size=(n, 4)), rng.normal(size=(n, 4))
        y[:2] = x[:2] + 0.05  # two clean pairs, the rest noise: the two directions differ
        table.update(zip(src, x)), table.update(zip(eng, y))
        norm = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
        truth[lang] = (nn_accuracy(norm(x), norm(y)), nn_accuracy(norm(y), norm(x)))
    (folder / "README").write_text("not a pair file")
    assert tatoeba.languages(folder) == ["deu", "fra"]
    assert truth["fra"][0] != truth["fra"][1] or truth["deu"][0] != truth["deu"][1]
    enc = NormalisingTableEncoder(table)
    results = tatoeba.evaluate(enc, tmp_path)
    got = {(r.language, r.metric): (r.value, r.count) for r in results}
    for lang, (fwd, bwd) in truth.items():
        n = 5 if lang == "fra" else 4
        assert got[(lang, "acc@1 xxx->eng")] == pytest.approx((fwd, n))
        assert got[(lang, "acc@1 eng->xxx")] == pytest.approx((bwd, n))
    assert got[("mean", "acc@1 xxx->eng")] == pytest.approx((np.mean([t[0] for t in truth.values()]), 2))
    assert got[("mean", "acc@1 eng->xxx")] == pytest.approx((np.mean([t[1] for t in truth.values()]), 2))
    assert [r.language for r in results] == ["deu", "deu", "fra", "fra", "mean", "mean"]
    assert {r.task for r in results} == {"tatoeba"}
    assert set(enc.kinds) == {"query"} and set(enc.progress) == {False}  # both sides encoded as queries
    assert tatoeba.load_pairs(folder, "fra", limit=2) == (["fra sentence 0", "fra sentence 1"],
                                                          ["eng fra sentence 0", "eng fra sentence 1"])
    assert tatoeba.load_pairs(folder, "fra")[0][-1] == "fra ends with X"  # only the final newline is stripped
    with pytest.raises(MSMError, match=r"no files for language 'ita' in .* \(have deu, fra\)"):
        tatoeba.load_pairs(folder, "ita")
    (folder / "tatoeba.ita-eng.ita").write_text("solo\n")  # the English side is missing
    with pytest.raises(MSMError, match="no files for language 'ita'"):
        tatoeba.load_pairs(folder, "ita")
    only = tatoeba.evaluate(enc, tmp_path, langs=["deu"], limit=3, show_progress=True)
    assert [(r.language, r.count) for r in only] == [("deu", 3), ("deu", 3), ("mean", 1), ("mean", 1)]
    assert enc.progress[-2:] == [True, True]


def test_tatoeba_bad_files(tmp_path):
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    with pytest.raises(MSMError, match="tatoeba: .* not found"):
        tatoeba.evaluate(NormalisingTableEncoder({}), tmp_path / "nowhere")
    (folder / "tatoeba.fra-eng.fra").write_text("a\nb\n")
    (folder / "tatoeba.fra-eng.eng").write_text("a\n")
    with pytest.raises(MSMError, match="tatoeba fra: tatoeba.fra-eng.fra has 2 lines, tatoeba.fra-eng.eng 1"):
        tatoeba.load_pairs(folder, "fra")
    with pytest.raises(MSMError, match=r"no files for language 'deu' in .* \(have fra\)"):
        tatoeba.load_pairs(folder, "deu")
    (folder / "tatoeba.fra-eng.eng").write_bytes(b"\xff\xfe\n\x00")
    with pytest.raises(MSMError, match=r"tatoeba.fra-eng.eng: not UTF-8"):
        tatoeba.load_pairs(folder, "fra")
    (folder / "tatoeba.fra-eng.eng").write_text("a\nb\n")
    (folder / "tatoeba.fra-eng.fra").write_bytes(b"ok\n\xff\n")
    with pytest.raises(MSMError, match=r"tatoeba.fra-eng.fra: not UTF-8"):  # names the bad file, not the other
        tatoeba.load_pairs(folder, "fra")
