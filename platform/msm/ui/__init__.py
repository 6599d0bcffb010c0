"""The UI's logic, behind the Streamlit pages in the repository's ``ui/`` folder: data-root guard, corpora and
search, mined-pair views, run metrics. Nothing here imports Streamlit, so all of it is unit-testable.

Named ``msm.ui`` (it was ``msm.ui_support``): ``ui/`` holds the pages Streamlit runs as scripts (a fixed part of
the layout, not a package), ``msm.ui`` what they call.
"""
