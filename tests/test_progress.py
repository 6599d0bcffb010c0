"""The driver's progress line (``msm.progress``): formatting, tailing ``metrics.jsonl``, no log flooding."""

from __future__ import annotations

import io
import json
import time

from msm.progress import Progress, Tail, describe, duration, follow


def test_describe_and_duration():
    assert duration(9.4) == "9s" and duration(245) == "4m05s" and duration(3720) == "1h02m"
    assert describe(120, 1000, 2.31449, (1234.4, "tokens/s"), 312) == \
        "step 120/1000 (12%) · loss 2.314 · 1,234 tokens/s · ETA 5m12s"
    assert describe(7, 0) == "step 7"


def test_tail_waits_for_torn_lines_and_follows_several_files(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    tail = Tail(lambda: [a, b])
    assert not tail.poll()  # neither file exists yet
    a.write_text('{"step": 1, "loss": 3.0}\n{"step": 2, "lo')
    assert tail.poll() and tail.latest[a]["step"] == 1
    with open(a, "a") as fh:
        fh.write('ss": 2.5}\nnot json\n{"no_step": 1}\n')
    b.write_text('{"step": 4}\n')
    assert tail.poll() and tail.latest[a] == {"step": 2, "loss": 2.5} and tail.latest[b]["step"] == 4
    assert not tail.poll()
    a.write_text('{"step": 1}\n')  # cut back, as a resumed run truncates its metrics to the checkpoint
    assert tail.poll() and tail.latest[a]["step"] == 1


def test_a_line_every_ten_percent_without_a_terminal():
    now = [0.0]
    out = io.StringIO()
    progress = Progress(200, "pretrain", out, tty=False, clock=lambda: now[0])
    for step in range(1, 201):
        now[0] = step * 0.5
        progress.show([{"step": step, "loss": 1.0 / step, "tokens_per_s": 1000.0}])
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 0 %, 10 %, ..., 100 %
    assert lines[1] == "pretrain: step 20/200 (10%) · loss 0.05 · 1,000 tokens/s · ETA 1m30s"
    assert lines[-1].startswith("pretrain: step 200/200 (100%)") and "ETA 0s" in lines[-1]


def test_sweep_sums_trials_and_rate_from_steps_when_records_have_none():
    now = [0.0]
    out = io.StringIO()
    progress = Progress(100, "sweep", out, tty=False, per_step=(32, "examples/s"), clock=lambda: now[0])
    progress.show([{"step": 0}])
    now[0] = 10.0
    line = progress.show([{"step": 10, "loss": 2.0, "time": 1}, {"step": 15, "loss": 1.5, "time": 2}])
    assert line == "step 25/100 (25%) · loss 1.5 · 80 examples/s · ETA 30s"
    line = progress.show([{"step": 10, "tokens_per_s": 5.0, "time": 1}, {"step": 15, "tokens_per_s": 7.0, "time": 100}])
    assert "7 tokens/s" in line  # the trial that finished at time 1 no longer adds its rate


def test_follow_tails_a_growing_file_to_the_end(tmp_path, monkeypatch):
    monkeypatch.delenv("MSM_NO_PROGRESS", raising=False)
    path, out = tmp_path / "metrics.jsonl", io.StringIO()
    with follow(path, 4, "finetune", interval_s=0.01, stream=out, tty=False):
        for step in range(1, 5):
            with open(path, "a") as fh:
                record = {"step": step, "loss": 1.0} if step < 4 else {"step": 4, "train_runtime": 9}  # HF's summary
                fh.write(json.dumps(record) + "\n")
            time.sleep(0.05)
    assert out.getvalue().splitlines()[-1].startswith("finetune: step 4/4 (100%) · loss 1")
    monkeypatch.setenv("MSM_NO_PROGRESS", "1")
    with follow(path, 4, "finetune", stream=out) as progress:
        assert progress is None


def test_terminal_gets_a_bar(tmp_path):
    out = io.StringIO()
    progress = Progress(10, "pretrain", out, tty=True)
    progress.show([{"step": 5, "loss": 0.5}])
    progress.close()
    assert "5/10" in out.getvalue() and "loss 0.5" in out.getvalue()


def test_tail_reads_a_run_at_a_uri_from_where_it_left_off(s3_server):
    """A URI run's progress: the uploaded ``metrics.jsonl`` read by ranged reads, torn line and cut-back as local."""
    from msm.uri import resolve

    loc = resolve("s3://runs/progress-test/metrics.jsonl")
    tail = Tail(lambda: [loc])
    assert not tail.poll()  # not uploaded yet
    loc.write_text('{"step": 1, "loss": 3.0}\n{"step": 2, "lo')
    assert tail.poll() and tail.latest[loc.uri]["step"] == 1 and tail.offsets[loc.uri] == 25
    loc.write_text('{"step": 1, "loss": 3.0}\n{"step": 2, "loss": 2.5}\n{"step": 3}\n')  # the next upload
    assert tail.poll() and tail.latest[loc.uri] == {"step": 3}
    assert not tail.poll()
    loc.write_text('{"step": 1}\n')  # a resumed run's upload, cut back to its checkpoint
    assert tail.poll() and tail.latest[loc.uri] == {"step": 1}


def test_follow_on_a_uri_shows_the_last_record_at_the_end(s3_server, monkeypatch):
    from msm.uri import resolve

    monkeypatch.delenv("MSM_NO_PROGRESS", raising=False)
    loc, out = resolve("s3://runs/progress-test/follow.jsonl"), io.StringIO()
    loc.write_text('{"step": 2, "loss": 1.5}\n')
    with follow(loc, 2, "pretrain", stream=out, tty=False) as progress:
        pass  # ended before the first 10 s poll: the closing read still shows the last record
    assert progress is not None and out.getvalue().splitlines()[-1].startswith("pretrain: step 2/2 (100%) · loss 1.5")
