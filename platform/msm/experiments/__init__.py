"""Research drivers on top of the library: ``msm experiment results`` (MSM variants against the start model,
``make results``) and ``msm experiment protocol`` (the paper's start → MSM → fine-tune protocol on XQuAD-R,
``make protocol``). They call the library's public functions (pretraining, fine-tuning, evaluation); nothing in
the library imports them. Paths (configs, the mined corpus, ``docs/RESULTS.md``) default to the current folder:
run them from the checkout's root, as the Make targets do.
"""
