"""``msm <verb>``: each verb lives in ``msm/commands/<verb>.py`` and registers itself.

A command module defines ``register(subparsers)`` that adds its parser and sets ``func`` (args → exit code).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import msm
import msm.commands
from msm.errors import MSMError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msm", description=msm.__doc__)
    parser.add_argument("--version", action="version", version=f"msm {msm.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(msm.commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"msm.commands.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (MSMError, FileNotFoundError) as exc:
        print(f"msm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
