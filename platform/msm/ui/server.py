"""Start the Streamlit app in a subprocess on a free local port (browser tests, screenshots, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from msm.errors import MSMError
from msm.ui.paths import REPO

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def ui_command(port: int, address: str, headless: bool) -> list[str]:
    """The ``streamlit run ui/app.py`` command line (``msm ui`` and the tests start the same app)."""
    app = REPO / "ui" / "app.py"
    if not app.is_file():
        raise MSMError(f"{app}: not found; msm ui runs from a source checkout of the MSM Platform")
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
            "--server.address", address, "--server.headless", str(headless).lower(),
            "--browser.gatherUsageStats", "false", "--server.maxUploadSize", "200", "--client.toolbarMode", "minimal"]


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
