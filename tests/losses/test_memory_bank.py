"""LanguageMemoryBank's state before and while it fills (found by mutation: an unfilled slot must never look like
a key of some language, and the language buffer stays integer for checkpoints)."""

from __future__ import annotations

import torch

from msm.losses.memory_bank import LanguageMemoryBank


def test_a_new_bank_is_empty_and_a_partial_one_holds_only_what_was_enqueued():
    bank = LanguageMemoryBank(size=4, dim=2)
    keys, langs = bank.ordered()
    assert keys.shape == (0, 2) and langs.tolist() == []
    bank.enqueue(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([1, 0]))
    keys, langs = bank.ordered()
    assert keys.tolist() == [[1.0, 0.0], [0.0, 1.0]] and langs.tolist() == [1, 0]
    assert bank.langs.dtype == torch.long and bank.state_dict()["langs"].dtype == torch.long
