"""The read stage on Ray Data: every input kind over local paths and ``file://`` URIs, bad files quarantined per
file (and line), an unreachable URI named. The reference is the plain, single-process reader."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from msm.data.config import InputConfig
from msm.errors import MSMError

GERMAN = "Der schnelle braune Fuchs springt über den faulen Hund. Danach schläft er lange im warmen Gras."


@pytest.fixture
def inputs(tmp_path):
    """A JSONL folder (two files, bad lines in both), a Parquet folder with a truncated file among good ones, .txt."""
    jl = tmp_path / "jl"
    jl.mkdir()
    (jl / "a.jsonl").write_bytes(json.dumps({"id": "a1", "text": GERMAN}).encode() + b'\n{"id": "bad"\n')
    (jl / "b.jsonl").write_bytes(b'{"id": "b1", "text": "\xff"}\n' + json.dumps({"id": "b2", "text": GERMAN}).encode())
    pqd = tmp_path / "pq"
    pqd.mkdir()
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(2500)], "text": [GERMAN] * 2500}), pqd / "big.parquet",
                   row_group_size=1000)
    pq.write_table(pa.table({"id": ["q1"], "text": [GERMAN * 40]}), pqd / "cut.parquet")
    data = (pqd / "cut.parquet").read_bytes()
    (pqd / "cut.parquet").write_bytes(data[: len(data) // 2])
    pq.write_table(pa.table({"id": ["r1"], "body": ["no text column"]}), pqd / "foreign.parquet")
    txt = tmp_path / "txt"
    txt.mkdir()
    (txt / "one.txt").write_text(GERMAN, encoding="utf-8")
    return [InputConfig(kind="jsonl", path=f"file://{jl}"), InputConfig(kind="parquet", path=str(pqd), lang="de"),
            InputConfig(kind="txt_dir", path=str(txt))]


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_ray_read_equals_the_plain_reader_and_quarantines_per_file(ray_local, inputs, tmp_path) -> None:
    from msm.data.readers import read_input
    from msm.data.sources import read_inputs

    import ray.data

    ctx = ray.data.DataContext.get_current()
    old, ctx.target_max_block_size = ctx.target_max_block_size, 64 * 1024
    try:  # Ray Data bounds blocks in bytes; a read task streams its file in blocks of block_records records
        blocks = list(read_inputs(inputs, tmp_path, block_records=400).iter_batches(batch_size=None,
                                                                                 batch_format="pyarrow"))
    finally:
        ctx.target_max_block_size = old
    assert len(blocks) >= 4 and max(b.nbytes for b in blocks) <= 2 * 64 * 1024  # 2,500 rows ≈ 300 KB
    rows = [r for b in blocks for r in b.to_pylist()]
    by_id = {r["doc_id"]: r for r in rows}
    assert len(rows) == len(by_id) == 4 + 2502 + 1
    errors = {d: r["error"].split(":")[0] for d, r in by_id.items() if r["error"]}
    assert errors == {"in0:a.jsonl:line2": "bad_record", "in0:b.jsonl:line1": "invalid_utf8",
                      "in1:cut.parquet": "unreadable_parquet", "in1:foreign.parquet": "bad_schema"}
    assert f"{tmp_path}/jl/b.jsonl:1" in by_id["in0:b.jsonl:line1"]["error"]  # names the file and the line
    assert all(r["lang"] == "de" for d, r in by_id.items() if d.startswith("in1:"))
    # the plain reader (one JSONL file at a time), record for record
    plain = [r for f in ("a.jsonl", "b.jsonl")
             for r in read_input(InputConfig(kind="jsonl", path=str(tmp_path / "jl" / f)), 0, tmp_path)]
    plain += [r for i, inp in enumerate(inputs) if i > 0 for r in read_input(inp, i, tmp_path)]
    good = {r["doc_id"]: r for r in plain if not r["error"]}
    assert {d: r for d, r in by_id.items() if not r["error"]} == good


def test_unreachable_uri_and_missing_path_name_themselves(tmp_path, monkeypatch) -> None:
    from msm.data.sources import input_location

    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    uri = "s3://corpus/docs?endpoint_override=127.0.0.1:9&scheme=http"  # nothing listens on port 9
    with pytest.raises(MSMError, match=r"s3://corpus/docs.*unreachable.*no object store answers at 127\.0\.0\.1:9: fix "
                                       r"the URI's endpoint_override"):
        input_location(InputConfig(kind="jsonl", path=uri), 0, tmp_path)
    with pytest.raises(MSMError, match=r"inputs\[0\] \(parquet\): path .*nope does not exist"):
        input_location(InputConfig(kind="parquet", path="nope"), 0, tmp_path)
    with pytest.raises(MSMError, match=r"not a usable URI"):
        input_location(InputConfig(kind="jsonl", path="s3://b/x?bogus=1"), 0, tmp_path)
