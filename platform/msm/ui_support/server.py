"""Start the Streamlit app in a subprocess on a free local port (browser tests, screenshots, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from msm.errors import MSMError

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_chromium() -> str | None:
    """Debian's ``chromium`` (apt-get install chromium), else ``None``."""
    for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"):
        if Path(path).is_file():
            return path
    return None


@contextlib.contextmanager
def running_app(env: dict[str, str] | None = None, port: int | None = None, timeout: float = 60.0,
                log: Path | None = None) -> Iterator[str]:
    """Serve ``ui/app.py`` on 127.0.0.1 (headless); yield its URL once healthy; stop it afterwards."""
    from msm.commands.ui import ui_command

    port = port or free_port()
    sink = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(ui_command(port, "127.0.0.1", headless=True), env={**os.environ, **(env or {})},
                            stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise MSMError(f"the Streamlit app did not come up on {url} (exit code {proc.poll()}); "
                               f"see {log or 'its output'}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            sink.close()
