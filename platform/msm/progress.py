"""A progress line on the driver from what a run writes: step/total, loss, rate, ETA.

The training loops (Ray Train workers, Tune trials) append one JSON object per step or log record to
``metrics.jsonl``; :func:`follow` tails those files in a thread while the run goes on: local files, or a run's
copy at a URI (``s3://...``, read with ranged reads from the last offset; it is as fresh as the run's uploads). On a terminal it draws a
tqdm bar; otherwise (logs, CI) it prints one line each ``every_pct`` percent, so a long run writes ~10 lines.
``MSM_NO_PROGRESS=1`` turns it off. While no step comes, a :class:`~msm.runtime.StallWatch` may say why (Ray
cannot schedule what the run asks for) and end the run.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from msm.errors import MSMError
from msm.runtime import StallWatch
from msm.uri import Location

RATE_KEYS = (("tokens_per_s", "tokens/s"), ("sentences_per_s", "sentences/s"),
             ("train_samples_per_second", "examples/s"))
STALE_S = 60.0  # records this much older (their ``time``) than the newest do not count towards the rate


def duration(seconds: float) -> str:
    """``1h02m``, ``4m05s``, ``9s``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def describe(step: int, total: int, loss: float | None = None, rate: tuple[float, str] | None = None,
             eta_s: float | None = None) -> str:
    """``step 120/1000 (12%) · loss 2.314 · 1,234 tokens/s · ETA 5m12s`` (absent parts left out)."""
    parts = [f"step {step}/{total} ({100 * step / total:.0f}%)" if total else f"step {step}"]
    if loss is not None:
        parts.append(f"loss {loss:.4g}")
    if rate is not None:
        parts.append(f"{rate[0]:,.0f} {rate[1]}")
    if eta_s is not None:
        parts.append(f"ETA {duration(eta_s)}")
    return " · ".join(parts)


def _read_from(path: Path | Location, offset: int) -> tuple[int, bytes]:
    """(size, bytes from ``offset``, or from 0 when the file is now shorter: a resumed run cut it back)."""
    if isinstance(path, Location):
        with path.fs.open_input_file(path.path) as fh:  # random access: a ranged read on object stores
            size = fh.size()
            start = offset if size >= offset else 0
            fh.seek(start)
            return start, fh.read()
    with open(path, "rb") as fh:
        start = offset if fh.seek(0, os.SEEK_END) >= offset else 0
        fh.seek(start)
        return start, fh.read()


class Tail:
    """The latest record of each ``metrics.jsonl`` that ``paths()`` names (local paths or URI locations); a torn
    last line waits for its end."""

    def __init__(self, paths: Callable[[], list[Path | Location]], since: float | None = None) -> None:
        self.paths, self.since = paths, since  # since: records stamped (``time``) earlier belong to an older run
        self.offsets: dict[Path | str, int] = {}
        self.latest: dict[Path | str, dict] = {}

    def poll(self) -> bool:
        """Read what was appended since the last poll; True if any file got a new record."""
        changed = False
        for where in self.paths():
            path = where.uri if isinstance(where, Location) else where
            try:
                self.offsets[path], data = _read_from(where, self.offsets.get(path, 0))
            except (OSError, MSMError):  # not there yet, or a store that is briefly unreachable: try again later
                continue
            end = data.rfind(b"\n") + 1
            self.offsets[path] = self.offsets.get(path, 0) + end
            for line in data[:end].splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if not (isinstance(record, dict) and isinstance(record.get("step"), int)):
                    continue
                if self.since is not None and isinstance(record.get("time"), (int, float)) and record["time"] < self.since:
                    continue
                self.latest[path], changed = record, True
        return changed


class Progress:
    """Turns the latest records into a bar (``tty``) or a line every ``every_pct`` percent. The rate is the
    records' own (``tokens_per_s``, ...; summed over files), else ``per_step`` × the step rate seen here."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, tty: bool | None = None,
                 every_pct: float = 10.0, per_step: tuple[int, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.label, self.every_pct, self.clock = total, label, every_pct, clock
        self.per_step = per_step  # (items, unit) of one step: a rate from the step rate when records carry none
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.start: tuple[float, int] | None = None  # (time, step) of the first record seen: a resumed run's ETA
        self.printed = -1
        self.loss: float | None = None
        self.bar = None
        if self.tty:

            self.bar = tqdm(total=total or None, desc=label, unit="step", file=self.stream, dynamic_ncols=True)

    def show(self, records: list[dict]) -> str | None:
        """Update from the latest record of each file (several: the trials of a sweep); returns the line."""
        if not records:
            return None
        step = sum(r["step"] for r in records)
        now = self.clock()
        if self.start is None:
            self.start = (now, step)
        newest = max(records, key=lambda r: r.get("time", 0))
        if isinstance(newest.get("loss"), (int, float)):  # a trainer's closing summary record has none
            self.loss = newest["loss"]
        live = [r for r in records if newest.get("time", 0) - r.get("time", 0) < STALE_S]  # not finished trials
        rate = next(((sum(r.get(k) or 0 for r in live), unit) for k, unit in RATE_KEYS
                     if any(r.get(k) for r in live)), None)
        done_s, done_steps = now - self.start[0], step - self.start[1]
        if rate is None and self.per_step and done_steps > 0:
            rate = (self.per_step[0] * done_steps / done_s, self.per_step[1])
        eta = (self.total - step) * done_s / done_steps if done_steps > 0 and self.total else None
        line = describe(step, self.total, self.loss, rate, eta)
        if self.bar is not None:
            self.bar.n = min(step, self.total) if self.total else step
            self.bar.set_postfix_str(line.split(" · ", 1)[1] if " · " in line else "", refresh=False)
            self.bar.refresh()
            return line
        bucket = int(100 * step / self.total // self.every_pct) if self.total else step
        if bucket > self.printed:
            self.printed = bucket
            print(f"{self.label}: {line}", file=self.stream, flush=True)
        return line

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Watcher:
    """The thread behind :func:`follow`: polls the metrics files, updates the progress, asks the stall watch; on a
    fatal stall it interrupts the main thread (as Ctrl-C would) unless the ``with`` body has already ended."""

    def __init__(self, tail: Tail, progress: Progress | None, stall: StallWatch | None, label: str, out: TextIO,
                 interval_s: float, clock: Callable[[], float], can_abort: bool) -> None:
        self.tail, self.progress, self.stall, self.label, self.out = tail, progress, stall, label, out
        self.interval_s, self.clock, self.can_abort = interval_s, clock, can_abort
        self.stop, self.lock = threading.Event(), threading.Lock()
        self.thread = threading.Thread(target=self.loop, name="msm-progress", daemon=True)

    def loop(self) -> None:
        last_step, last_said = self.clock(), -math.inf
        while not self.stop.wait(self.interval_s):
            if self.tail.poll():
                last_step = self.clock()
                if self.progress is not None:
                    self.progress.show(list(self.tail.latest.values()))
                continue
            line = self.stall.check(self.clock() - last_step) if self.stall is not None else None
            if line is None:
                continue
            if not self.can_abort:  # SIGINT ignored here (a background job) or another thread: report only, as a
                self.stall.stalled = None  # wait is (once every after_s, not at every poll)
            if self.clock() - last_said < self.stall.after_s and not self.stall.stalled:
                continue
            last_said = self.clock()
            print(f"{self.label}: {line}", file=self.out, flush=True)
            if self.stall.stalled:
                with self.lock:
                    if self.stop.is_set():  # the body ended meanwhile: nothing left to interrupt
                        self.stall.stalled = None
                        return
                    _thread.interrupt_main()  # Ray Train / Tune abort their run; the error is raised in follow
                    return

    def finish(self) -> None:
        with self.lock:
            self.stop.set()
        self.thread.join()


@contextlib.contextmanager
def follow(paths: Callable[[], list[Path | Location]] | Path | Location | None, total: int, label: str,
           interval_s: float | None = None,
           per_step: tuple[int, str] | None = None, stream: TextIO | None = None,
           tty: bool | None = None, stall: StallWatch | None = None,
           clock: Callable[[], float] = time.monotonic, since: float | None = None) -> Iterator[Progress | None]:
    """Show the progress of the run writing ``paths`` (one ``metrics.jsonl`` or a function listing several;
    None: nothing to show) while the ``with`` body runs; a last read when it ends. Polls every ``interval_s``
    (default 2 s, 10 s for a URI: one request per poll). ``since``: a wall-clock time; records stamped earlier are
    an earlier run's (a resumed run's old steps are not shown as this run's progress).

    ``stall``: asked (:meth:`msm.runtime.StallWatch.check`) at every poll once no new step came for its
    ``after_s``; its line is printed (again every ``after_s`` while the wait lasts). When it declares a fatal stall,
    the ``with`` body (the blocking ``fit()``) is interrupted as by Ctrl-C (Ray Train and Tune abort their run) and
    :meth:`~msm.runtime.StallWatch.error` is raised in its place: only from the main thread, and only where Ctrl-C
    is not ignored (a job started in the background keeps running, its stall reported). The stall watch runs even
    with ``MSM_NO_PROGRESS=1``."""
    quiet = paths is None or os.environ.get("MSM_NO_PROGRESS") == "1"
    if quiet and stall is None:
        yield None
        return
    files = (lambda: []) if paths is None else paths if callable(paths) else (lambda: [paths])
    if interval_s is None:
        interval_s = 10.0 if isinstance(paths, Location) else 2.0
    progress = None if quiet else Progress(total, label, stream, tty, per_step=per_step)
    can_abort = (threading.current_thread() is threading.main_thread()
                 and signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL, None))
    watcher = _Watcher(Tail(files, since), progress, stall, label, stream or sys.stdout, interval_s, clock, can_abort)
    watcher.thread.start()
    try:
        try:
            yield progress
        finally:
            watcher.finish()
    except BaseException:  # Ray Train and Tune answer the interrupt by aborting the run (even with SystemExit)
        if stall is not None and stall.stalled:
            raise stall.error() from None
        raise
    finally:
        if progress is not None:
            if watcher.tail.poll():
                progress.show(list(watcher.tail.latest.values()))
            progress.close()
    if stall is not None and stall.stalled:  # the run was aborted and returned
        raise stall.error()
