"""Starting encoders, as folders ``from_pretrained`` loads: the offline multilingual-e5-small rebuilt from wheels,
tiny random XLM-R encoders for tests, model names resolved to folders (aliases, local folders, hub ids) and the
sentence-transformers export of any of them.

Named ``encoders`` (it was ``msm.models``) so it no longer reads as the plural of :mod:`msm.model`, the MSM network
that trains on top of one of these encoders. The CLI verb keeps its user-facing name, ``msm models``.
"""
