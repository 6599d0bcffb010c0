"""Pure-Python helpers behind the Streamlit UI (``ui/``): data-root guard, corpora and search, mined-pair
views, run metrics. Nothing here imports Streamlit, so all of it is unit-testable."""
