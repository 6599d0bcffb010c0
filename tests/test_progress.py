"""The driver's progress line (``msm.progress``): formatting, tailing ``metrics.jsonl``, no log flooding."""

from __future__ import annotations

import io
import json
import time
import uuid

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

    loc = resolve(f"s3://runs/progress-test/{uuid.uuid4().hex}/metrics.jsonl")  # moto's store outlives a session
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
    loc, out = resolve(f"s3://runs/progress-test/{uuid.uuid4().hex}/follow.jsonl"), io.StringIO()
    loc.write_text('{"step": 2, "loss": 1.5}\n')
    with follow(loc, 2, "pretrain", stream=out, tty=False) as progress:
        pass  # ended before the first 10 s poll: the closing read still shows the last record
    assert progress is not None and out.getvalue().splitlines()[-1].startswith("pretrain: step 2/2 (100%) · loss 1.5")


# ---- formatting, tailing, the bar and the lines, the watcher and follow: each promise of the docstrings ------------

import signal  # noqa: E402
import threading  # noqa: E402

import pyarrow.fs as pafs  # noqa: E402
import pytest  # noqa: E402

from msm import progress as progress_module  # noqa: E402
from msm.progress import STALE_S, _read_from, _Watcher  # noqa: E402
from msm.runtime import Pending, StallWatch  # noqa: E402
from msm.uri import Location  # noqa: E402


@pytest.fixture(autouse=True)
def tqdm_lock_of_this_process(monkeypatch):
    """tqdm serialises its writes with a multiprocessing lock that every forked process shares: a mutation run forks
    one process per mutant, and one killed while it held the lock would hang every later bar. These bars need only
    a thread lock, and no monitor thread."""
    from tqdm import tqdm

    monkeypatch.setattr(tqdm, "_lock", threading.RLock(), raising=False)
    monkeypatch.setattr(tqdm, "monitor_interval", 0)


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (0.5, "0s"), (1.5, "2s"), (59.4, "59s"), (59.5, "1m00s"), (60, "1m00s"), (61, "1m01s"),
    (599, "9m59s"), (3599, "59m59s"), (3599.6, "1h00m"), (3600, "1h00m"), (3659, "1h00m"), (3660, "1h01m"),
    (7322, "2h02m"), (36000 + 59 * 60, "10h59m"),
])
def test_duration_at_each_unit_boundary(seconds, text):
    assert duration(seconds) == text  # round half to even: 0.5 -> 0, 1.5 -> 2, 59.5 -> 60


def test_describe_leaves_out_only_the_absent_parts():
    assert describe(1, 3) == "step 1/3 (33%)" and describe(2, 3) == "step 2/3 (67%)"
    assert describe(0, 10) == "step 0/10 (0%)" and describe(10, 10) == "step 10/10 (100%)"
    assert describe(0, 0) == "step 0" and describe(12, 0, 0.5) == "step 12 · loss 0.5"
    assert describe(5, 10, loss=0.0) == "step 5/10 (50%) · loss 0"  # a zero loss is a loss
    assert describe(5, 10, loss=123456.0) == "step 5/10 (50%) · loss 1.235e+05"
    assert describe(5, 10, loss=0.000123456) == "step 5/10 (50%) · loss 0.0001235"
    assert describe(5, 10, rate=(0.0, "tokens/s")) == "step 5/10 (50%) · 0 tokens/s"
    assert describe(5, 10, rate=(1234567.6, "examples/s")) == "step 5/10 (50%) · 1,234,568 examples/s"
    assert describe(5, 10, eta_s=0) == "step 5/10 (50%) · ETA 0s"  # an ETA of zero is shown
    assert describe(5, 10, eta_s=61) == "step 5/10 (50%) · ETA 1m01s"
    assert describe(5, 10, 2.0, (3.0, "sentences/s")) == "step 5/10 (50%) · loss 2 · 3 sentences/s"


@pytest.mark.parametrize("kind", ["path", "location"])
def test_read_from_an_offset_and_from_the_start_of_a_shorter_file(tmp_path, kind):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"0123456789")
    where = path if kind == "path" else Location(pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()),
                                                 "m.jsonl", "sub://m.jsonl")
    assert _read_from(where, 0) == (0, b"0123456789")
    assert _read_from(where, 4) == (4, b"456789")
    assert _read_from(where, 10) == (10, b"")  # read to the end: nothing new, not the whole file again
    assert _read_from(where, 11) == (0, b"0123456789")  # the file was cut back (a resumed run)


def test_tail_skips_what_is_no_step_record_and_records_of_an_earlier_run(tmp_path):
    a = tmp_path / "a.jsonl"
    lines = [{"step": 1, "time": 99.5}, {"step": 2, "time": 100}, [1, 2], {"step": 2.5}, {"step": "3"}, "text",
             {"step": 3}, {"step": 4, "time": "late"}, {"step": 5, "time": 101, "loss": 1.0}]
    a.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 6}')  # the last line is torn
    tail = Tail(lambda: [a], since=100)
    assert tail.poll()
    assert tail.latest[a] == {"step": 5, "time": 101, "loss": 1.0}
    assert tail.offsets[a] == len(a.read_bytes()) - len('{"step": 6}')
    seen = []
    for x in lines:  # one record a poll: which ones count (since=100: time 100 is this run's, 99.5 an older run's)
        a.write_text(json.dumps(x) + "\n")
        tail = Tail(lambda: [a], since=100)
        seen.append(tail.poll())
    assert seen == [False, True, False, False, False, False, True, True, True]
    a.write_text('not json\n{"step": 8}\n')  # a line that is no JSON is skipped, not the end of the read
    tail = Tail(lambda: [a])
    assert tail.poll() and tail.latest[a] == {"step": 8}
    tail = Tail(lambda: [a])  # no since: every step record counts
    a.write_text(json.dumps({"step": 1, "time": 0}) + "\n")
    assert tail.poll() and tail.latest[a]["step"] == 1


def test_tail_offsets_count_bytes_and_a_missing_file_does_not_hide_the_next(tmp_path):
    missing, a, b = tmp_path / "missing.jsonl", tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"step": 1, "note": "é"}\n', encoding="utf-8")
    tail = Tail(lambda: [missing, a, b])
    assert tail.poll() and tail.latest == {a: {"step": 1, "note": "é"}}
    assert tail.offsets[a] == len('{"step": 1, "note": "é"}\n'.encode()) == 26 and missing not in tail.offsets
    with open(a, "a", encoding="utf-8") as fh:
        fh.write('{"step": 2}\n')
    b.write_text('{"step": 7}\n')
    assert tail.poll() and tail.latest == {a: {"step": 2}, b: {"step": 7}}
    assert tail.offsets == {a: 26 + 12, b: 12}
    assert not tail.poll()


def test_tail_keys_a_location_by_its_uri(tmp_path):
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())  # only its filesystem can open this path
    loc = Location(fs, "run/metrics.jsonl", "mem://run/metrics.jsonl")
    tail = Tail(lambda: [loc])
    assert not tail.poll()  # not written yet: an error to wait out
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 3}\n{"step": 4}\n')
    assert tail.poll() and tail.latest == {"mem://run/metrics.jsonl": {"step": 4}}
    assert tail.offsets == {"mem://run/metrics.jsonl": 24}


def lines_of(progress_total, steps, every_pct=10.0):
    out = io.StringIO()
    p = Progress(progress_total, "run", out, tty=False, every_pct=every_pct, clock=lambda: 0.0)
    for s in steps:
        p.show([{"step": s}])
    return [line.split(" ")[2] for line in out.getvalue().splitlines()]  # "run: step S/T (P%)" -> "S/T"


def test_a_line_each_every_pct_percent_from_the_first_record():
    # total 7, every 25 %: buckets floor(100 * s / 7 / 25) = 0, 0, 1, 1, 2, 2, 3, 4 for s = 0..7
    assert lines_of(7, range(8), every_pct=25) == ["0/7", "2/7", "4/7", "6/7", "7/7"]
    assert lines_of(7, [3, 1, 2, 3, 7]) == ["3/7", "7/7"]  # a step back prints nothing
    assert lines_of(200, range(1, 201), every_pct=50) == ["1/200", "100/200", "200/200"]
    assert lines_of(0, [1, 1, 2, 5, 5]) == ["1", "2", "5"]  # no total: a line per new step


class Flushes(io.StringIO):
    """A stream that keeps what it held at each flush (log lines must leave as they are printed)."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []

    def flush(self) -> None:
        self.flushed.append(self.getvalue())


def test_each_line_is_flushed_as_it_is_printed():
    out = Flushes()
    p = Progress(0, "run", out, tty=False, clock=lambda: 0.0)
    for step in (1, 2):
        p.show([{"step": step}])
        assert out.flushed[-1] == out.getvalue() and out.getvalue().endswith(f"run: step {step}\n")


def test_the_default_stream_is_stdout_and_no_terminal_there_means_lines(capsys):
    p = Progress(4, "run", clock=lambda: 0.0)
    assert p.bar is None
    assert p.show([{"step": 2, "loss": 1.5}]) == "step 2/4 (50%) · loss 1.5"
    assert capsys.readouterr().out == "run: step 2/4 (50%) · loss 1.5\n"
    assert p.show([]) is None


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_stream_that_is_a_terminal_gets_the_bar():
    out = Terminal()
    p = Progress(10, "pretrain", out, clock=lambda: 0.0)
    assert p.bar is not None and p.bar.total == 10 and p.bar.desc == "pretrain" and p.bar.unit == "step"
    assert p.bar.fp is not None and p.bar.dynamic_ncols  # resizes with the terminal
    draws = out.getvalue().count("\r")
    line = p.show([{"step": 12, "loss": 0.25, "tokens_per_s": 50.0}])
    assert out.getvalue().count("\r") == draws + 1  # one redraw a record (the postfix does not draw on its own)
    assert line == "step 12/10 (120%) · loss 0.25 · 50 tokens/s"
    assert p.bar.n == 10 and p.bar.postfix == "loss 0.25 · 50 tokens/s"  # the bar stops at its total
    assert "loss 0.25 · 50 tokens/s" in out.getvalue() and "pretrain" in out.getvalue()
    p.show([{"step": 3}])
    assert p.bar.n == 3 and p.bar.postfix == "loss 0.25" and "3/10" in out.getvalue()  # the loss is kept
    assert not p.bar.disable
    p.close()
    assert p.bar.disable  # closed
    bare = Progress(0, "sweep", Terminal(), clock=lambda: 0.0)
    assert bare.bar.total is None
    assert bare.show([{"step": 40}]) == "step 40"
    assert bare.bar.n == 40 and bare.bar.postfix == ""
    assert Progress(10, "x", Terminal(), tty=False).bar is None  # tty given: the stream is not asked


def test_loss_is_the_newest_records_and_kept_when_it_has_none():
    p = Progress(0, "sweep", io.StringIO(), tty=False, clock=lambda: 0.0)
    assert p.show([{"step": 1, "loss": 3.0, "time": 5}, {"step": 1, "loss": 2.0, "time": 4}]) == "step 2 · loss 3"
    no_time = {"step": 1, "loss": 2.0}  # counts as time 0
    assert p.show([no_time, {"step": 1, "loss": 4.0, "time": -0.5}]) == "step 2 · loss 2"
    assert p.show([{"step": 1, "loss": 2.0}, {"step": 1, "loss": 3.0, "time": 0.5}]) == "step 2 · loss 3"
    assert p.show([{"step": 2, "loss": "nan?", "time": 6}]) == "step 2 · loss 3"
    assert p.show([{"step": 3, "time": 7}]) == "step 3 · loss 3"  # a closing summary: no loss
    assert p.show([{"step": 4, "loss": 1, "time": 8}]) == "step 4 · loss 1"


def test_the_rate_key_found_first_wins_and_stale_records_do_not_count():
    p = Progress(0, "x", io.StringIO(), tty=False, clock=lambda: 0.0)
    assert p.show([{"step": 1, "sentences_per_s": 4.0, "tokens_per_s": 10.0}]) == "step 1 · 10 tokens/s"
    assert p.show([{"step": 1, "sentences_per_s": 4.0, "train_samples_per_second": 9.0}]) == "step 1 · 4 sentences/s"
    assert p.show([{"step": 1, "train_samples_per_second": 9.0}]) == "step 1 · 9 examples/s"
    assert p.show([{"step": 1, "tokens_per_s": None}, {"step": 1, "tokens_per_s": 2.0}]) == "step 2 · 2 tokens/s"
    # records older than STALE_S (by their time) than the newest are finished trials: their rate is not added
    fresh = {"step": 1, "tokens_per_s": 1.0, "time": 1000.0}
    assert STALE_S == 60.0
    assert p.show([fresh, {"step": 1, "tokens_per_s": 100.0, "time": 1000.0 - 59.9}]) == "step 2 · 101 tokens/s"
    assert p.show([fresh, {"step": 1, "tokens_per_s": 100.0, "time": 1000.0 - 60.0}]) == "step 2 · 1 tokens/s"
    assert p.show([{"step": 1, "tokens_per_s": 5.0}, {"step": 1, "tokens_per_s": 7.0}]) == "step 2 · 12 tokens/s"
    # a record without a time counts as time 0: stale beside one stamped 60.5, live beside one stamped 59.5
    untimed = {"step": 1, "tokens_per_s": 100.0}
    assert p.show([{"step": 1, "tokens_per_s": 1.0, "time": 60.5}, untimed]) == "step 2 · 1 tokens/s"
    assert p.show([{"step": 1, "tokens_per_s": 1.0, "time": 59.5}, untimed]) == "step 2 · 101 tokens/s"
    assert p.show([{"step": 1, "tokens_per_s": 1.0, "time": -59.5}, untimed]) == "step 2 · 101 tokens/s"  # the newest


def test_eta_and_the_step_rate_count_from_the_first_record_seen():
    """A resumed run starts at its checkpoint's step: its ETA and rate come from the steps made here."""
    now = [100.0]
    p = Progress(100, "pretrain", io.StringIO(), tty=False, per_step=(32, "examples/s"), clock=lambda: now[0])
    assert p.show([{"step": 50}]) == "step 50/100 (50%)"  # nothing done yet: no rate, no ETA
    now[0] = 110.0
    assert p.show([{"step": 50}]) == "step 50/100 (50%)"
    now[0] = 120.0
    assert p.show([{"step": 60}]) == "step 60/100 (60%) · 16 examples/s · ETA 1m20s"  # 10 steps in 20 s
    assert p.show([{"step": 60, "tokens_per_s": 3.0}]) == "step 60/100 (60%) · 3 tokens/s · ETA 1m20s"
    q = Progress(100, "pretrain", io.StringIO(), tty=False, clock=lambda: now[0])  # no per_step: no rate
    q.show([{"step": 0}])
    now[0] = 130.0
    assert q.show([{"step": 10}]) == "step 10/100 (10%) · ETA 1m30s"
    one = Progress(9, "pretrain", io.StringIO(), tty=False, per_step=(6, "examples/s"), clock=lambda: now[0])
    one.show([{"step": 0}])
    now[0] = 132.0
    assert one.show([{"step": 1}]) == "step 1/9 (11%) · 3 examples/s · ETA 16s"  # one step done: 2 s a step
    r = Progress(0, "sweep", io.StringIO(), tty=False, per_step=(2, "examples/s"), clock=lambda: now[0])
    r.show([{"step": 0}])
    now[0] = 140.0
    assert r.show([{"step": 5}]) == "step 5 · 1 examples/s"  # no total: no ETA


# ---- the watcher thread, driven by a fake clock: one poll per tick ---------------------------------------------------

def stalled_watch(after_s: float = 5.0, fail: bool = False) -> StallWatch:
    return StallWatch(after_s, fail=fail, pending=lambda: Pending([({"CPU": 1.0}, 1)]), total=lambda: {"CPU": 2.0})


def stall_line(idle: int) -> str:
    return (f"pretrain: no step for {idle}s; Ray cannot schedule 1 × {{CPU: 1}} on a cluster of 2 CPU, 0 GPU, and no "
            "node is being added: the run waits for resources it will never get (lower the workers' CPUs/GPUs or "
            "add a node)")


def drive(tmp_path, ticks: int, stall: StallWatch | None, records: dict[int, int] | None = None,
          can_abort: bool = False, progress: Progress | None = None, stop_at: int | None = None):
    """Run ``_Watcher.loop`` (in its thread, without pause between polls): each poll is one second of the fake
    clock (tick t: the clock reads t); a step record is appended at the ticks in ``records``; the ``with`` body
    ends (stop) at tick ``stop_at`` or after ``ticks``. Returns (the lines printed, the ticks polled)."""
    metrics = tmp_path / "metrics.jsonl"
    now, polled = [0.0], []
    out = Flushes()

    def paths():
        t = len(polled) + 1
        polled.append(t)
        now[0] = float(t)
        if records and t in records:
            with open(metrics, "a") as fh:
                fh.write(json.dumps({"step": records[t]}) + "\n")
        if t == (stop_at or ticks):
            watcher.stop.set()
        return [metrics]

    watcher = _Watcher(Tail(paths), progress, stall, "pretrain", out, 0.0, lambda: now[0], can_abort)
    thread = threading.Thread(target=watcher.loop, daemon=True)  # as follow runs it
    thread.start()
    thread.join(5)
    if thread.is_alive():  # a loop that never polls or never stops: end it and fail
        watcher.stop.set()
        thread.join(5)
        pytest.fail(f"the watch loop did not end after {len(polled)} polls")
    lines = out.getvalue().splitlines()
    assert [f.count("\n") for f in out.flushed] == list(range(1, len(lines) + 1))  # each line flushed as printed
    return lines, polled


def test_a_stall_line_is_said_again_every_after_s_while_no_step_comes(tmp_path):
    lines, polled = drive(tmp_path, 22, stalled_watch(5.0))
    assert polled == list(range(1, 23))
    # idle 5 s at tick 5: the blocked demand seen once; tick 6: twice in a row, said; then every 5 s
    assert lines == [stall_line(6), stall_line(11), stall_line(16), stall_line(21)]


def test_a_step_restarts_the_idle_clock_and_is_shown(tmp_path):
    out = io.StringIO()
    progress = Progress(10, "pretrain", out, tty=False, clock=lambda: 0.0)
    lines, _ = drive(tmp_path, 16, stalled_watch(5.0), records={3: 1, 4: 5}, progress=progress)
    # last step at tick 4: idle 5 s at 9 (seen once), said at 10 (idle 6 s) and 15 (idle 11 s)
    assert lines == [stall_line(6), stall_line(11)]
    assert out.getvalue().splitlines() == ["pretrain: step 1/10 (10%)", "pretrain: step 5/10 (50%) · ETA 0s"]


def test_no_stall_watch_means_no_lines(tmp_path):
    lines, polled = drive(tmp_path, 12, None)
    assert lines == [] and polled == list(range(1, 13))


def test_a_fatal_stall_where_ctrl_c_cannot_reach_is_reported_and_the_run_left_alone(tmp_path, sigint_recorder):
    watch = stalled_watch(5.0, fail=True)
    lines, polled = drive(tmp_path, 12, watch)
    time.sleep(0.01)
    assert sigint_recorder == []  # never interrupted
    assert polled == list(range(1, 13))  # the loop goes on
    assert lines == [stall_line(6), stall_line(11)]  # said every after_s as any stall line, not at every poll
    assert watch.stalled is None  # report only: follow raises nothing


@pytest.fixture
def sigint_recorder():
    """SIGINT calls a recorder (as Ray Train's handler, which aborts the run and returns): ``interrupt_main``
    lands there instead of raising KeyboardInterrupt into the test."""
    got = []
    previous = signal.signal(signal.SIGINT, lambda *_: got.append(1))
    yield got
    signal.signal(signal.SIGINT, previous)


def test_a_fatal_stall_interrupts_the_main_thread_once_and_ends_the_watch(tmp_path, sigint_recorder):
    watch = stalled_watch(5.0, fail=True)
    lines, polled = drive(tmp_path, 30, watch, can_abort=True)
    for _ in range(100):  # the signal handler runs between bytecodes of the main thread
        if sigint_recorder:
            break
        time.sleep(0.001)
    assert sigint_recorder == [1]
    assert polled == list(range(1, 7)) and lines == [stall_line(6)]  # declared at tick 6: the loop ends there
    assert watch.stalled is not None and watch.error().args[0].startswith("stalled: no step for 6s")


def test_a_fatal_stall_after_the_body_ended_interrupts_nothing(tmp_path, sigint_recorder):
    watch = stalled_watch(5.0, fail=True)
    lines, polled = drive(tmp_path, 30, watch, can_abort=True, stop_at=6)  # the body ends as the stall is declared
    time.sleep(0.01)
    assert sigint_recorder == [] and watch.stalled is None
    assert polled == list(range(1, 7)) and lines == [stall_line(6)]


# ---- follow -------------------------------------------------------------------------------------------------------

class RecordingEvent(threading.Event):
    waits: list = []

    def wait(self, timeout=None):
        if timeout is not None:
            RecordingEvent.waits.append(timeout)
        return super().wait(timeout)


@pytest.fixture
def poll_intervals(monkeypatch):
    """The timeouts the watcher waits between polls (threading.Event, recorded)."""
    RecordingEvent.waits = []
    monkeypatch.setattr(progress_module.threading, "Event", RecordingEvent)
    monkeypatch.delenv("MSM_NO_PROGRESS", raising=False)
    return RecordingEvent.waits


def test_follow_polls_every_2_s_a_path_and_every_10_s_a_uri(tmp_path, poll_intervals):
    path = tmp_path / "metrics.jsonl"
    loc = Location(pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), "metrics.jsonl", "sub://m")
    for target, interval, want in ((path, None, 2.0), (loc, None, 10.0), (lambda: [path], None, 2.0),
                                   (path, 0.5, 0.5), (loc, 0.25, 0.25)):
        poll_intervals.clear()
        with follow(target, 4, "run", interval_s=interval, stream=io.StringIO(), tty=False) as progress:
            assert progress is not None
            (watcher,) = [t for t in threading.enumerate() if t.name == "msm-progress"]
            assert watcher.daemon  # never keeps the interpreter alive
            for _ in range(1000):
                if poll_intervals:
                    break
                time.sleep(0.001)
        assert poll_intervals and set(poll_intervals) == {want}


def test_follow_reads_what_came_last_when_the_body_ends(tmp_path, poll_intervals):
    path, out = tmp_path / "metrics.jsonl", io.StringIO()
    with follow(lambda: [path], 8, "finetune", interval_s=60, stream=out, tty=False,
                per_step=(4, "examples/s")) as progress:
        path.write_text('{"step": 2, "loss": 1.5}\n')  # no poll comes for a minute: the closing read shows it
    assert out.getvalue() == "finetune: step 2/8 (25%) · loss 1.5\n"
    assert progress.per_step == (4, "examples/s") and progress.total == 8 and progress.label == "finetune"


def test_follow_without_a_new_record_at_the_end_prints_nothing_more(tmp_path, poll_intervals):
    path, out = tmp_path / "metrics.jsonl", io.StringIO()
    with follow(path, 8, "finetune", interval_s=60, stream=out, tty=False):
        pass
    assert out.getvalue() == ""


def test_follow_to_a_terminal_closes_its_bar(tmp_path, poll_intervals):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 3}\n')
    with follow(path, 8, "pretrain", interval_s=60, stream=Terminal()) as progress:
        assert progress.bar is not None and not progress.bar.disable
    assert progress.bar.disable and progress.bar.n == 3


def test_follow_hides_an_earlier_runs_records(tmp_path, poll_intervals):
    path, out = tmp_path / "metrics.jsonl", io.StringIO()
    path.write_text('{"step": 9, "time": 50.0}\n{"step": 2, "time": 150.0}\n')
    with follow(path, 10, "pretrain", interval_s=60, stream=out, tty=False, since=100.0):
        pass
    assert out.getvalue() == "pretrain: step 2/10 (20%)\n"


def test_follow_writes_to_stdout_by_default(tmp_path, poll_intervals, capsys):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n')
    with follow(path, 2, "run", interval_s=60, tty=False):
        pass
    assert capsys.readouterr().out == "run: step 1/2 (50%)\n"


def test_follow_is_off_with_msm_no_progress_1_only(tmp_path, poll_intervals, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n')
    for value, shown in (("1", False), ("0", True), ("", True)):
        monkeypatch.setenv("MSM_NO_PROGRESS", value)
        out = io.StringIO()
        with follow(path, 2, "run", interval_s=60, stream=out, tty=False) as progress:
            pass
        assert (progress is not None) == shown and (out.getvalue() == "run: step 1/2 (50%)\n") == shown
    with follow(None, 2, "run", stream=io.StringIO()) as progress:
        assert progress is None


def test_the_stall_watch_runs_without_progress_and_away_from_the_main_thread(tmp_path, poll_intervals, monkeypatch,
                                                                            sigint_recorder):
    """MSM_NO_PROGRESS=1 (or nothing to show) keeps the stall watch; in another thread than the main one a fatal
    stall is reported, never raised (Ctrl-C cannot reach a run there)."""
    monkeypatch.setenv("MSM_NO_PROGRESS", "1")
    got = {}

    def run(paths):
        out = io.StringIO()
        watch = stalled_watch(0.0, fail=True)
        with follow(paths, 10, "pretrain", interval_s=0.01, stream=out, stall=watch) as progress:
            for _ in range(500):
                if "Ray cannot schedule" in out.getvalue():
                    break
                time.sleep(0.01)
        got[str(paths)] = (progress, out.getvalue(), watch.stalled)

    for paths in (tmp_path / "metrics.jsonl", None):
        thread = threading.Thread(target=run, args=(paths,))
        thread.start()
        thread.join(10)
        progress, printed, stalled = got[str(paths)]
        assert progress is None and stalled is None and sigint_recorder == []  # reported, never interrupted
        assert printed.startswith("pretrain: no step for 0s; Ray cannot schedule 1 × {CPU: 1} on a cluster of 2 CPU")


def test_a_fatal_stall_with_ctrl_c_left_at_its_default_is_only_reported(tmp_path, poll_intervals):
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C would kill the process, not end the fit
    try:
        out, watch = io.StringIO(), stalled_watch(0.0, fail=True)
        with follow(tmp_path / "m.jsonl", 10, "pretrain", interval_s=0.01, stream=out, tty=False, stall=watch):
            for _ in range(500):
                if "Ray cannot schedule" in out.getvalue():
                    break
                time.sleep(0.01)
        assert "Ray cannot schedule" in out.getvalue() and watch.stalled is None
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stall_declared_while_the_body_raises_replaces_its_error(tmp_path, poll_intervals, sigint_recorder):
    watch = stalled_watch(60.0, fail=True)
    with pytest.raises(progress_module.MSMError, match="^stalled: no step") as err:
        with follow(tmp_path / "m.jsonl", 10, "pretrain", interval_s=60, stream=io.StringIO(), tty=False, stall=watch):
            watch.stalled = "no step for 99s; stuck"  # as the watcher declares it, then the framework's abort
            raise SystemExit(1)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    watch.stalled = None
    with pytest.raises(KeyError):  # no stall: the body's own error
        with follow(tmp_path / "m.jsonl", 10, "pretrain", interval_s=60, stream=io.StringIO(), tty=False, stall=watch):
            raise KeyError("x")


def blocked_body(until, seconds: float = 5.0) -> None:
    """A fit() that blocks (short sleeps: an interrupt lands between them), bounded: ends when ``until()`` or after
    ``seconds``."""
    end = time.monotonic() + seconds
    while not until() and time.monotonic() < end:
        time.sleep(0.01)


def test_a_fatal_stall_interrupts_the_blocked_body_and_is_raised_in_its_place(tmp_path, poll_intervals):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C raises KeyboardInterrupt
    try:
        out, watch = io.StringIO(), stalled_watch(0.0, fail=True)
        t0 = time.monotonic()
        with pytest.raises(progress_module.MSMError) as err:
            with follow(tmp_path / "m.jsonl", 10, "pretrain", interval_s=0.01, stream=out, tty=False, stall=watch):
                blocked_body(lambda: False)
        assert time.monotonic() - t0 < 4
        assert str(err.value).startswith("stalled: no step for 0s; Ray cannot schedule 1 × {CPU: 1}")
        assert err.value.__cause__ is None and err.value.__suppress_context__  # not "during KeyboardInterrupt"
        assert out.getvalue().splitlines() == [stall_line(0)]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_fatal_stall_is_raised_after_a_body_that_returned_from_the_interrupt(tmp_path, poll_intervals,
                                                                               sigint_recorder):
    """Ray Train's own SIGINT handler aborts the run and fit() returns: the stall error comes after the body."""
    watch = stalled_watch(0.0, fail=True)
    with pytest.raises(progress_module.MSMError, match="^stalled: no step for 0s"):
        with follow(tmp_path / "m.jsonl", 10, "pretrain", interval_s=0.01, stream=io.StringIO(), tty=False,
                    stall=watch):
            blocked_body(lambda: bool(sigint_recorder))
    assert sigint_recorder == [1]
