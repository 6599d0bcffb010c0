"""User-facing errors: the CLI prints their message (which names the input and the fix) and exits 2.

:func:`user_message` finds such a message behind whatever Ray wrapped it in; :func:`as_user_error` turns an
exception into that :class:`MSMError` (or leaves it as it is): the CLI, the demo, mining and the corpus stage use
these two.
"""

from __future__ import annotations

import re


class MSMError(Exception):
    """Bad input, config or environment, explained for the user."""


def _user_classes() -> set[str]:
    names, todo = set(), [MSMError]
    while todo:
        cls = todo.pop()
        names.add(f"{cls.__module__}.{cls.__qualname__}")
        todo += cls.__subclasses__()
    return names


def user_message(exc: BaseException) -> str | None:
    """The message of the :class:`MSMError` behind ``exc``, however Ray wrapped it (exception chains, a Ray task's
    ``cause``, a Ray Train worker group's ``worker_failures`` or controller failure, exception groups), or, where a
    wrapper kept only its text (Ray Data's ``UserCodeException``), the ``msm....Error: <message>`` line of the
    remote traceback it carries; None when the error is not a user's mistake."""

    classes = _user_classes()
    line = re.compile(r"^(" + "|".join(re.escape(c) for c in sorted(classes)) + r"): (.+)$", re.M)
    seen: set[int] = set()
    todo: list = [exc]
    found_text = None
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        text = str(e).strip()
        if isinstance(e, MSMError) and type(e).__module__.startswith("msm"):  # not Ray's copy around a traceback
            return text
        matches = line.findall(text)
        if matches and found_text is None:
            found_text = matches[-1][1].strip()
        cause = getattr(e, "cause", None)
        todo += [cause if isinstance(cause, BaseException) else None, e.__cause__, e.__context__,
                 getattr(e, "controller_failure", None)]
        todo += list((getattr(e, "worker_failures", None) or {}).values())
        todo += list(getattr(e, "exceptions", None) or [])
    return found_text


def as_user_error(exc: BaseException) -> BaseException:
    """The :class:`MSMError` behind ``exc`` (:func:`user_message`), re-raisable on the driver, else ``exc``."""
    found = user_message(exc)
    return MSMError(found) if found is not None and not isinstance(exc, MSMError) else exc
