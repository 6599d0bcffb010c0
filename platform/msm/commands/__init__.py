"""CLI verbs, one module each (see ``msm.cli``)."""
