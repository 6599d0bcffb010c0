"""Data-parallel MSM without Ray: 2 processes on gloo (``torch.multiprocessing``, forked) against single-process
references computed here.

What is comparable, and what the 2-process run must reproduce:

* **Bank** (after step 1): every rank holds the targets of *both* ranks' batches, rank 0's first — the targets a
  single process computes for each rank's batch with the same weights.
* **Gradients** (step 1): DDP's gradient is the mean over ranks of each rank's own loss gradient (in-batch
  negatives and BatchNorm statistics are per rank, the bank is global): the single-process reference is the
  mean of the gradients of the two per-rank losses, each computed alone.
* **Loss** (step 2, after one SGD step): each rank's loss with the gathered bank equals a single process's loss
  on that rank's batch given the bank holding both ranks' step-1 targets (and differs from the loss with rank
  0's bank alone, i.e. what DDP's buffer broadcast used to leave every rank with).
* **Accumulation** (step 3, two micro-batches per rank): the accumulated gradient equals the mean over ranks and
  micro-batches of the per-micro-batch gradients, where the second micro-batch sees the first one's gathered
  keys in the bank.
* **Buffers**: ``broadcast_buffers`` is off; each rank's BatchNorm running statistics follow its own batches.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

WORDS = ("river school market train bread music garden window letter mountain city paper winter doctor "
         "bridge island coffee summer forest engine").split()
# (documents, sentences per document, language per document) of each batch; ranks get unequal key counts
PLAN = {
    "A0": ([5, 4], [0, 1]), "A1": ([6, 3, 2], [2, 0, 0]),  # step 1
    "C0": ([4, 4], [0, 2]), "C1": ([5, 3], [0, 1]),  # step 2: both ranks have queries of languages in A0 and A1
    "D0": ([3, 5], [1, 0]), "D1": ([4, 2], [2, 2]),  # step 3, micro-batch 1
    "E0": ([6, 2], [0, 0]), "E1": ([3, 4], [2, 1]),  # step 3, micro-batch 2
}
LR = 0.5


def _docs(name: str) -> list[list[str]]:
    seed = sum(map(ord, name))
    counts, _ = PLAN[name]
    return [[f"{WORDS[(seed + 3 * d + 7 * i) % 20]} {WORDS[(seed * 5 + d + i * i) % 20]} number {seed + d + i}."
             for i in range(n)] for d, n in enumerate(counts)]


def _batch(tokenizer, name: str, max_sentences: int = 6, max_tokens: int = 12) -> dict[str, torch.Tensor]:
    docs, langs = _docs(name), PLAN[name][1]
    ids = torch.full((len(docs), max_sentences, max_tokens), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    smask = torch.zeros((len(docs), max_sentences), dtype=torch.bool)
    for i, doc in enumerate(docs):
        enc = tokenizer(doc, truncation=True, max_length=max_tokens, padding="max_length", return_tensors="pt")
        ids[i, : len(doc)], mask[i, : len(doc)], smask[i, : len(doc)] = enc["input_ids"], enc["attention_mask"], True
    return {"input_ids": ids, "attention_mask": mask, "sentence_mask": smask, "lang": torch.tensor(langs)}


def _key_langs(batch) -> torch.Tensor:
    return batch["lang"].repeat_interleave(batch["sentence_mask"].sum(1))


def _worker(rank: int, world: int, init_file: str, model_dir: str, cfg, state_file: str, batches: dict,
            out_dir: str) -> None:
    import torch.distributed as dist
    from safetensors.torch import load_file, save_file

    from msm.model.msm import MSMModel
    from msm.train.loop import accumulate_gradients, wrap_ddp

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = MSMModel(cfg, model_dir)
        model.load_state_dict(load_file(state_file))
        ddp = wrap_ddp(model)
        cpu = torch.device("cpu")
        out = {"broadcast_buffers": torch.tensor(ddp.broadcast_buffers)}
        # step 1
        model.zero_grad(set_to_none=True)
        parts = accumulate_gradients(ddp, [batches[f"A{rank}"]], cpu)
        out["step1_loss"] = torch.tensor(parts[0]["loss"])
        out.update({f"grad1.{k}": p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
        out["bank1_keys"], out["bank1_langs"] = (t.clone() for t in model.memory_bank.ordered())
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= LR * p.grad
        # step 2: the loss given the gathered bank (no backward: DDP's reducer is not armed under no_grad)
        with torch.no_grad():
            out["step2_loss"] = ddp(batches[f"C{rank}"]).loss.clone()
        out["bn_running_mean"] = model.target_head.net[1].running_mean.clone()
        # step 3: two micro-batches
        model.zero_grad(set_to_none=True)
        parts = accumulate_gradients(ddp, [batches[f"D{rank}"], batches[f"E{rank}"]], cpu)
        out["step3_losses"] = torch.tensor([p["loss"] for p in parts])
        out.update({f"grad3.{k}": p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
        out["bank3_keys"], out["bank3_langs"] = (t.clone() for t in model.memory_bank.ordered())
        save_file({k: v.contiguous() for k, v in out.items()}, f"{out_dir}/rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


def _grads(model, loss) -> dict[str, torch.Tensor]:
    named = list(model.named_parameters())
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    return {k: g for (k, _), g in zip(named, grads) if g is not None}


def _mean(dicts: list[dict]) -> dict:
    return {k: sum(d[k] for d in dicts) / len(dicts) for k in dicts[0]}


def _assert_grads_equal(got: dict, prefix: str, want: dict) -> None:
    """Each gradient to 1e-4 of its largest entry; a gradient that is zero in exact arithmetic (key biases
    under softmax, a bias feeding a BatchNorm) is float noise (seen: 1.4e-7 of the largest after a gloo
    all-reduce), compared at 1e-6 of the largest gradient."""
    got = {k[len(prefix):]: v for k, v in got.items() if k.startswith(prefix)}
    assert set(got) == set(want)
    scale = max(w.abs().max().item() for w in want.values())
    for k, w in want.items():
        err = (got[k] - w).abs().max().item()
        assert err <= 1e-4 * max(w.abs().max().item(), 1e-2 * scale), (k, err, w.abs().max().item(), scale)


def _enqueue_all(model, outputs, batches, names) -> None:
    """A single process's enqueue of several ranks' targets, in rank order."""
    model.memory_bank.enqueue(torch.cat([o.targets.detach() for o in outputs]),
                              torch.cat([_key_langs(batches[n]) for n in names]))


@pytest.mark.timeout(300)
def test_two_process_steps_match_single_process_references(tiny_model_dir, tiny_cfg, tmp_path):
    import torch.multiprocessing as mp
    from safetensors.torch import load_file, save_file

    from msm.model.msm import MSMModel
    from msm.encoders.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)  # the per-process copy MSMModel uses (the children inherit it)
    # step 3 wraps the ring. Padded encoding: the ranks run 1 thread, the reference more, and the small per-bucket
    # matmuls sum in another order (~2e-7 on near-zero gradients); test_length_buckets.py covers the buckets
    cfg = dataclasses.replace(tiny_cfg, memory_bank_size=48, length_buckets=0)
    batches = {name: _batch(tokenizer, name) for name in PLAN}
    torch.manual_seed(0)
    ref = MSMModel(cfg, tiny_model_dir)  # HF encoder in eval mode (no dropout), heads' BatchNorm in training mode
    init = tmp_path / "init.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(init))
    # fork, not spawn: the children inherit transformers' imports and the cached tokenizer (~10 s CPU each when
    # spawned); they set one intra-op thread before any op, so no OpenMP region is entered after the fork
    mp.start_processes(_worker, nprocs=2, join=True, start_method="fork",
                       args=(2, str(tmp_path / "rendezvous"), str(tiny_model_dir), cfg, str(init), batches,
                             str(tmp_path)))
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    assert [bool(r["broadcast_buffers"]) for r in ranks] == [False, False]

    def forward(model, name: str):
        return model(batches[name], update_memory=False)

    # step 1: each rank's loss alone (empty bank); DDP's gradient = their mean; bank = both ranks' targets
    out1 = [forward(ref, f"A{r}") for r in range(2)]
    grads1 = _mean([_grads(ref, o.loss) for o in out1])
    want_keys = torch.cat([o.targets.detach() for o in out1])
    want_langs = torch.cat([_key_langs(batches[f"A{r}"]) for r in range(2)])
    assert want_keys.shape[0] == 9 + 11  # unequal counts per rank
    for r in range(2):
        assert float(ranks[r]["step1_loss"]) == pytest.approx(out1[r].loss.item(), abs=1e-5)
        _assert_grads_equal(ranks[r], "grad1.", grads1)
        torch.testing.assert_close(ranks[r]["bank1_keys"], want_keys, atol=1e-5, rtol=1e-4)
        assert ranks[r]["bank1_langs"].tolist() == want_langs.tolist()

    # step 2: one SGD step with the mean gradient; each rank's loss on its batch given both ranks' step-1 keys
    with torch.no_grad():
        for k, p in ref.named_parameters():
            if k in grads1:
                p -= LR * grads1[k]
    weights = {k: v.clone() for k, v in ref.state_dict().items() if not k.startswith("memory_bank.")}
    _enqueue_all(ref, out1, batches, ["A0", "A1"])
    out2 = [forward(ref, f"C{r}") for r in range(2)]
    for r in range(2):
        assert float(ranks[r]["step2_loss"]) == pytest.approx(out2[r].loss.item(), abs=1e-5)
    rank0_only = MSMModel(cfg, tiny_model_dir)
    rank0_only.load_state_dict(weights, strict=False)  # step-2 weights, an empty bank
    rank0_only.memory_bank.enqueue(out1[0].targets.detach(), _key_langs(batches["A0"]))
    stale = forward(rank0_only, "C1").loss.item()
    assert abs(stale - out2[1].loss.item()) > 1e-3  # the test tells the gathered bank from rank 0's alone
    _enqueue_all(ref, out2, batches, ["C0", "C1"])

    # BatchNorm running statistics per rank, not broadcast: rank r's saw A_r (initial weights), then C_r
    for r in range(2):
        first = MSMModel(cfg, tiny_model_dir)
        first.load_state_dict(load_file(str(init)))
        forward(first, f"A{r}")
        second = MSMModel(cfg, tiny_model_dir)
        second.load_state_dict(weights, strict=False)
        second.target_head.net[1].load_state_dict(first.target_head.net[1].state_dict())
        with torch.no_grad():
            forward(second, f"C{r}")
        torch.testing.assert_close(ranks[r]["bn_running_mean"], second.target_head.net[1].running_mean,
                                   atol=1e-5, rtol=1e-4)

    # step 3, accumulate 2: micro-batch D_r with the step-2 bank, then E_r with D_0's and D_1's keys added
    out_d = [forward(ref, f"D{r}") for r in range(2)]
    grads_d = [_grads(ref, o.loss) for o in out_d]
    _enqueue_all(ref, out_d, batches, ["D0", "D1"])
    out_e = [forward(ref, f"E{r}") for r in range(2)]
    grads3 = _mean(grads_d + [_grads(ref, o.loss) for o in out_e])
    _enqueue_all(ref, out_e, batches, ["E0", "E1"])
    want_keys, want_langs = ref.memory_bank.ordered()
    for r in range(2):
        assert ranks[r]["step3_losses"].tolist() == pytest.approx([out_d[r].loss.item(), out_e[r].loss.item()],
                                                                  abs=1e-5)
        _assert_grads_equal(ranks[r], "grad3.", grads3)
        torch.testing.assert_close(ranks[r]["bank3_keys"], want_keys, atol=1e-5, rtol=1e-4)
        assert ranks[r]["bank3_langs"].tolist() == want_langs.tolist()


def test_accumulated_gradient_is_the_mean_of_the_micro_batch_gradients(tiny_model_dir, tiny_cfg):
    """One process, no DDP: ``accumulate_gradients`` over (D0, E0) leaves (g(D0) + g(E0 | bank + D0's keys)) / 2."""
    from msm.errors import MSMError
    from msm.model.msm import MSMModel
    from msm.encoders.tokenizer import load_tokenizer
    from msm.train.loop import accumulate_gradients

    tokenizer = load_tokenizer(tiny_model_dir)
    batches = {name: _batch(tokenizer, name) for name in ("A0", "D0", "E0")}
    torch.manual_seed(0)
    model = MSMModel(tiny_cfg, tiny_model_dir)
    model(batches["A0"])  # a non-empty bank to start from
    ref = MSMModel(tiny_cfg, tiny_model_dir)
    ref.load_state_dict(model.state_dict())
    out_d = ref(batches["D0"], update_memory=False)
    grads = [_grads(ref, out_d.loss)]
    ref.memory_bank.enqueue(out_d.targets.detach(), _key_langs(batches["D0"]))
    out_e = ref(batches["E0"], update_memory=False)
    grads.append(_grads(ref, out_e.loss))
    ref.memory_bank.enqueue(out_e.targets.detach(), _key_langs(batches["E0"]))

    model.zero_grad(set_to_none=True)
    parts = accumulate_gradients(model, [batches["D0"], batches["E0"]], torch.device("cpu"))
    assert [p["loss"] for p in parts] == pytest.approx([out_d.loss.item(), out_e.loss.item()], abs=1e-6)
    assert [p["sentences"] for p in parts] == [8, 8] and parts[0]["mlm_loss"] is None
    _assert_grads_equal({f"g.{k}": p.grad for k, p in model.named_parameters() if p.grad is not None}, "g.",
                        _mean(grads))
    for got, want in zip(model.memory_bank.ordered(), ref.memory_bank.ordered()):
        torch.testing.assert_close(got, want)
    with pytest.raises(MSMError, match="at least one micro-batch"):
        accumulate_gradients(model, [], torch.device("cpu"))


def test_ddp_wrapper_does_not_broadcast_buffers():
    """Ray Train's ``prepare_model`` gets the flags (its DDP is built from ``parallel_strategy_kwargs``)."""
    from msm.losses.memory_bank import all_gather_rows
    from msm.train.loop import DDP_KWARGS, wrap_ddp

    calls = []
    module = torch.nn.Linear(2, 2)
    assert wrap_ddp(module, lambda m, **kw: calls.append(kw) or m) is module
    flag = "forward_sync_buffers" if "forward_sync_buffers" in DDP_KWARGS else "broadcast_buffers"
    assert calls == [{"move_to_device": False,
                      "parallel_strategy_kwargs": {"find_unused_parameters": True, flag: False}}]
    keys, langs = torch.randn(3, 4), torch.tensor([0, 2, 1])
    assert all_gather_rows(keys, langs) == (keys, langs)  # no process group: this process's rows


def test_accumulate_must_be_positive():
    from msm.train.config import OptimConfig

    with pytest.raises(ValueError, match="accumulate must be >= 1"):
        OptimConfig(accumulate=0)
