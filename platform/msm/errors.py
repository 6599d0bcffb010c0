"""User-facing errors: the CLI prints their message (which names the input and the fix) and exits 2."""


class MSMError(Exception):
    """Bad input, config or environment, explained for the user."""
