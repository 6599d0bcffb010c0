"""``msm ui [--data-root DIR ...] [--port N] [--model M]``: the Streamlit app (``ui/app.py``)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from msm.commands import port
from msm.errors import MSMError
from msm.ui.paths import ENV_ROOTS, data_roots
from msm.ui.server import ui_command


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if args.data_root:
        missing = [d for d in args.data_root if not os.path.isdir(d)]
        if missing:
            raise MSMError(f"--data-root {missing[0]}: not a folder; pass existing folders the UI may read")
        env[ENV_ROOTS] = os.pathsep.join(os.path.abspath(d) for d in args.data_root)
    if args.model:
        env["MSM_UI_MODEL"] = args.model
    roots = data_roots(env.get(ENV_ROOTS, ""))
    print(f"msm ui: http://{args.address}:{args.port}  data roots: {', '.join(map(str, roots))}", file=sys.stderr)
    return subprocess.call(ui_command(args.port, args.address, not args.browser), env=env)


def register(subparsers) -> None:
    p = subparsers.add_parser("ui", help="Streamlit UI: cross-lingual search, alignment viewer, run dashboards")
    p.add_argument("--data-root", action="append", default=[],
                   help=f"a folder the UI may read (repeatable; default ${ENV_ROOTS} or outputs/ and ../shared/data)")
    p.add_argument("--port", type=port, default=8501, help="TCP port (default: 8501)")
    p.add_argument("--address", default="127.0.0.1", help="bind address, 0.0.0.0 to serve the network "
                                                          "(default: 127.0.0.1)")
    p.add_argument("--model", default=None, help="default model (default: e5-small unless $MSM_UI_MODEL)")
    p.add_argument("--browser", action="store_true", help="open a browser tab (default: headless)")
    p.set_defaults(func=run)
