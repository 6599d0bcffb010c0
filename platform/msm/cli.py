"""``msm <verb>``: each verb lives in ``msm/commands/<verb>.py`` and registers itself.

A command module defines ``register(subparsers)`` that adds its parser and sets ``func`` (args → exit code). Every
verb also takes ``--debug`` and ``--verbose`` (added here) and spells its shared options the same way
(:mod:`msm.commands`).

Errors: an :class:`~msm.errors.MSMError` (bad input, config or environment), wherever it was raised (here, in a Ray
task or actor, in a Ray Train worker), is printed once as ``msm <verb>: error: <message>`` and the exit code is 2.
Any other error prints a one-line summary and exits 1; ``--debug`` (or ``MSM_DEBUG=1``) shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback

import msm
import msm.commands
from msm.errors import user_message
from msm.runtime import quiet_libraries

DEBUG_ENV = "MSM_DEBUG"
VERBOSE_ENV = "MSM_VERBOSE"


def leaf_parsers(parser: argparse.ArgumentParser):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
        return
    for sub in subs:
        for child in dict.fromkeys(sub.choices.values()):
            yield from leaf_parsers(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msm", description=msm.__doc__)
    parser.add_argument("--version", action="version", version=f"msm {msm.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(msm.commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"msm.commands.{info.name}").register(sub)
    for leaf in leaf_parsers(parser):
        if leaf is parser:
            continue
        leaf.add_argument("--debug", action="store_true",
                          help=f"show the traceback of an unexpected error (also {DEBUG_ENV}=1) (default: a one-line "
                               "summary)")
        leaf.add_argument("--verbose", action="store_true",
                          help="show Ray's, Ray Data's and transformers' own logs and progress bars (default: msm's "
                               "progress lines and summaries only)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV) == "1"
    before = os.environ.get(VERBOSE_ENV)
    if getattr(args, "verbose", False):
        os.environ[VERBOSE_ENV] = "1"  # for this command (and the Ray workers it starts), restored after it
    # models come from local folders or the Hugging Face cache unless the user says otherwise (HF_HUB_OFFLINE=0):
    # the driver's checks and the workers of a local cluster then look in the same place
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    quiet_libraries()
    try:
        return _run(args, debug)
    finally:
        if before is None:
            os.environ.pop(VERBOSE_ENV, None)
        else:
            os.environ[VERBOSE_ENV] = before


def _run(args: argparse.Namespace, debug: bool) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"msm {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the user's own mistake anywhere in the chain: its message; else a summary
        found = user_message(exc)
        if isinstance(exc, FileNotFoundError) and found is None:
            found = str(exc)
        if found is not None:
            print(f"msm {args.command}: error: {found}", file=sys.stderr)
            if debug:
                traceback.print_exception(exc)
            return 2
        if debug:
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"msm {args.command}: unexpected error: {type(exc).__name__}: {first}\n"
              f"  run again with --debug (or {DEBUG_ENV}=1) for the traceback; the logs of Ray's processes are under "
              "/tmp/ray/session_latest/logs", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
