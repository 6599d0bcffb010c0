"""Mutation testing of the core pure modules with mutmut 3 (``make mutation``); docs/testing.md explains the figures.

mutmut 3 imports the mutated code from ``mutants/src`` (or ``mutants/``), while this package lives in
``platform/msm``. So the run happens in a staging folder, ``.mutation/`` (git-ignored): ``src/msm`` is a copy of
``platform/msm`` and ``tests/``, ``configs/``, ``k8s/`` and ``jobs/`` are copied next to it. mutmut writes its mutants under
``.mutation/mutants/``; nothing under ``platform/`` is ever rewritten.

    python tools/mutation.py            # fresh stage, run mutmut on 2 workers, print + write the report
    python tools/mutation.py --keep     # reuse .mutation/ (mutmut re-tests only changed functions)
    python tools/mutation.py --report   # report of the last run only
    python tools/mutation.py --set plumbing   # the plumbing modules (issue 34), staged in .mutation-plumbing/

Report: per module killed / survived / other / total and % killed, with the mutants of the classes listed in
``EQUIVALENT`` (docs/testing.md, one by one) left out of the denominator; JSON to
``benchmarks/results/mutation.json`` with every surviving mutant's diff.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / ".mutation"
RESULTS = REPO / "benchmarks" / "results" / "mutation.json"

# Modules under mutation, as paths inside src/ of the stage (= platform/ of the repo).
MODULES = [
    "msm/losses/hierarchical_contrastive.py", "msm/losses/memory_bank.py", "msm/losses/mlm.py",
    "msm/model/msm.py", "msm/model/document_encoder.py",
    "msm/data/align.py", "msm/data/pair.py",
    "msm/eval/metrics.py", "msm/eval/tasks/common.py", "msm/eval/tasks/lareqa.py", "msm/eval/tasks/mewsli_x.py",
    "msm/eval/tasks/mrtydi.py", "msm/eval/tasks/tatoeba.py", "msm/eval/tasks/xor_retrieve.py",
    "msm/retrieval/index.py", "msm/tune/config.py",
]
# Fast unit tests of those modules (no Ray cluster, browser or e5-small download); mutmut runs, per mutant, only
# the tests that call the mutated function.
TESTS = [
    "tests/losses", "tests/model/test_msm.py", "tests/model/test_msm_persistence.py",
    "tests/model/test_msm_forward_wiring.py", "tests/model/test_document_encoder.py",
    "tests/model/test_mlm_masked_logits.py", "tests/model/test_length_buckets.py", "tests/model/test_bank_ddp.py",
    "tests/data/test_align.py", "tests/data/test_pair.py", "tests/data/test_pair_reference.py",
    "tests/data/test_pair_evidence.py", "tests/data/test_calibrate.py", "tests/data/test_pairing_quality.py",
    "tests/eval/test_metrics.py", "tests/eval/test_common.py", "tests/eval/test_lareqa.py",
    "tests/eval/test_tatoeba.py", "tests/eval/test_mrtydi.py", "tests/eval/test_mewsli_x.py",
    "tests/eval/test_xor_retrieve.py", "tests/eval/test_run.py", "tests/retrieval/test_index.py",
    "tests/retrieval/test_encoder.py", "tests/tune/test_tune_config.py",
]
# The plumbing: modules that move records between the stages (issue 34), target >= 85 % each. Run as a second set
# (`--set plumbing`) so that its figures and its JSON stay apart from the core's.
PLUMBING = [
    "msm/uri.py", "msm/data/outputs.py", "msm/run_folder.py", "msm/data/pair_stage.py", "msm/progress.py",
    "msm/train/corpus.py", "msm/train/stream.py",
    "msm/finetune/data.py", "msm/finetune/readers.py", "msm/finetune/config.py",
    "msm/cluster/submit.py",
]
PLUMBING_TESTS = [
    "tests/test_uri.py", "tests/data/test_outputs.py", "tests/test_run_folder.py", "tests/test_output.py",
    "tests/data/test_pair_stage.py", "tests/data/test_pair_evidence.py", "tests/test_progress.py",
    "tests/test_runtime.py", "tests/test_bad_inputs.py::test_submit_checks_before_it_uploads",
    "tests/train/test_corpus.py", "tests/train/test_stream.py", "tests/train/test_accumulate.py",
    "tests/train/test_pretrain.py", "tests/finetune/test_data.py", "tests/finetune/test_finetune_readers.py",
    "tests/finetune/test_finetune_config.py", "tests/cluster/test_submit.py",
]
SETS = {"core": (MODULES, TESTS, "mutation.json"), "plumbing": (PLUMBING, PLUMBING_TESTS, "mutation-plumbing.json")}
# mutation_plugin.py (copied to the stage) deselects Ray / browser / e5 and slow tests
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider", "-p", "mutation_plugin"]

# mutants that cannot change behaviour, by mutant name (docs/testing.md explains each one)
EQUIVALENT: dict[str, str] = {
    "msm.eval.metrics.x_answer_recall_at_tokens__mutmut_3":
        "`len(tokens) >= max_tokens` -> `>`: one more passage is read, but the text is cut to max_tokens anyway",
    "msm.eval.tasks.lareqa.x_rank__mutmut_24":
        "`np.argsort(..., axis=1)` -> no axis: the default (-1) is axis 1 of the 2-D score matrix",
    "msm.eval.tasks.lareqa.x_rank__mutmut_8":
        "`kind=\"passage\"` dropped: `passage` is the default of Encoder.encode (the encoder protocol)",
    "msm.eval.tasks.lareqa.x_evaluate__mutmut_25":
        "`rank(..., k)` -> `rank(..., None)`: every column is kept, but `score` reads only the first k of each row "
        "(average_precision cuts `ranked[:k]`)",
    "msm.data.align.x_alignment_objective__mutmut_22":
        "the source index of a link with no source sentence 0 -> 1: link_weight returns the skip penalty for any "
        "move with a 0 before it reads an index",
    "msm.data.align.x_alignment_objective__mutmut_26":
        "the same for the target index of a link with no target sentence",
    "msm.data.align.x_align__mutmut_17":
        "the bias of an empty side 0.0 -> 1.0: with an empty side only skip links exist, whose weight ignores the bias",
    "msm.data.align.x_align__mutmut_27":
        "`best` one row larger: the DP and its backtrace read only rows 0..n",
    "msm.data.align.x_align__mutmut_29":
        "`best` one column larger: only columns 0..m are read",
    "msm.data.align.x_align__mutmut_37":
        "`back` one row larger: only rows 0..n are read",
    "msm.data.align.x_align__mutmut_39":
        "`back` one column larger: only columns 0..m are read",
    "msm.data.align.x_align__mutmut_43":
        "`best[0, 0] = 1.0`: every path starts at (0, 0), so every score shifts by the same constant",
    "msm.data.align.x_align__mutmut_67":
        "`== +np.inf` instead of `-np.inf`: every earlier cell is reachable by skips, so no predecessor is ever -inf",
    "msm.data.align.x_link_similarities__mutmut_3":
        "merged sources of a 0/1-sentence side: _unit of the empty slice sum is the same empty (0, d) float array",
    "msm.data.align.x_link_similarities__mutmut_9":
        "the same with `len(a) >= 1`",
    "msm.data.align.x_link_similarities__mutmut_19":
        "the same for merged targets",
    "msm.data.align.x_link_similarities__mutmut_25":
        "the same for merged targets with `len(b) >= 1`",
    "msm.data.pair.x__evidence_scores__mutmut_40":
        "the in-place bestmatch shortcut skipped: sentence_evidence(..., 'bestmatch') computes the same formula",
    "msm.data.pair.x__evidence_scores__mutmut_50":
        "the same shortcut skipped ('XXbestmatchXX')",
    "msm.data.pair.x__evidence_scores__mutmut_51":
        "the same shortcut skipped ('BESTMATCH')",
    "msm.data.pair.x__rescored_margins__mutmut_14":
        "`if v else 1.0` for a document without candidates: every document has its own kNN list among the candidates",
    "msm.data.pair.x__rescored_margins__mutmut_21":
        "the same branch with 2.0",
    "msm.data.pair.x__rescored_margins__mutmut_25":
        "the same branch on the y side",
    "msm.data.pair.x__rescored_margins__mutmut_32":
        "the same branch on the y side with 2.0",
    "msm.data.pair.x__row_mean__mutmut_7":
        "rows summed in their own float32 instead of float64: a rounding difference (~1e-7) of the mean only",
    "msm.data.pair.x__row_mean__mutmut_13":
        "the mean kept float64: _Centred's _unit casts the centred rows to float32 anyway",
    "msm.data.pair.x__select__mutmut_13":
        "max(m, m) instead of max(previous, m): a candidate's margin is one value from both sides",
    "msm.data.pair.x_center__mutmut_8":
        "`mean(0)` without keepdims broadcasts over the rows the same way",
    "msm.data.pair.x_center__mutmut_10":
        "`keepdims=False`: the same broadcast",
    "msm.data.pair.x_knn__mutmut_29":
        "`replace=None`: numpy tests truthiness, None samples without replacement like False",
    "msm.data.pair.x_knn__mutmut_65":
        "queries not cast to float32: faiss's Python wrapper casts them itself",
    "msm.data.pair.x_knn__mutmut_67":
        "the same (dtype argument dropped)",
    "msm.data.pair.x_pair_documents_with_stats__mutmut_158":
        "`min_coverage >= 0`: a coverage is never below 0, so the filter at 0 keeps every candidate",
    "msm.data.pair.x_pair_documents_with_stats__mutmut_8":
        "default assign 'XXnoneXX': every value other than 'greedy' means no linking",
    "msm.data.pair.x_pair_documents_with_stats__mutmut_9":
        "default assign 'NONE': the same",
    "msm.tune.config.x__field_type__mutmut_20":
        "the dotted path of a section two levels deep: PretrainConfig has none, deeper keys fail earlier",
    "msm.eval.tasks.mrtydi.x_evaluate__mutmut_10":
        "a missing or non-folder <data-dir>/mrtydi: languages(root) finds no folder either way, so found == [] as in the else branch",
    "msm.eval.tasks.mrtydi.x_evaluate__mutmut_65":
        "SearchIndex.search returns at most min(k, n) ids a query, so ranked[:k] == ranked[:None]",
    "msm.eval.tasks.mrtydi.x_evaluate__mutmut_84":
        "the same for recall's ranked[:k]",
    "msm.eval.tasks.common.x_lines__mutmut_12":
        "gzip encoding 'UTF-8' vs 'utf-8': one codec, two names",
    "msm.eval.tasks.common.x_lines__mutmut_21":
        "open encoding 'UTF-8' vs 'utf-8': one codec, two names",
    "msm.eval.tasks.lareqa.x_load__mutmut_13":
        "encoding 'UTF-8' vs 'utf-8': one codec, two names",
    "msm.eval.tasks.tatoeba.x__read_lines__mutmut_6":
        "encoding 'UTF-8' vs 'utf-8': one codec, two names",
    "msm.retrieval.index.xǁSearchIndexǁbuild__mutmut_9":
        "embeddings not cast to float32: faiss's Python wrapper casts them itself",
    "msm.retrieval.index.xǁSearchIndexǁbuild__mutmut_11":
        "the same (dtype argument dropped)",
    "msm.retrieval.index.xǁSearchIndexǁbuild__mutmut_44":
        "max(2, 4 sqrt(n)) vs max(1, ...): 4 sqrt(n) >= 4 for any n >= 1, and an empty IVF cannot be trained either way",
    "msm.retrieval.index.xǁSearchIndexǁsearch__mutmut_3":
        "queries not cast to float32: faiss casts them itself",
    "msm.retrieval.index.xǁSearchIndexǁsearch__mutmut_5":
        "the same (dtype argument dropped)",
    "msm.losses.hierarchical_contrastive.x_hierarchical_contrastive_loss__mutmut_117":
        "float('-INF') is float('-inf')",
    "msm.losses.hierarchical_contrastive.x_hierarchical_contrastive_loss__mutmut_128":
        "float('-INF') is float('-inf')",
    "msm.losses.hierarchical_contrastive.x_hierarchical_contrastive_loss__mutmut_7":
        "row indices made on the CPU: PyTorch accepts CPU index tensors for a tensor on any device",
    "msm.losses.hierarchical_contrastive.x_hierarchical_contrastive_loss__mutmut_9":
        "the same (device argument dropped)",
    "msm.losses.hierarchical_contrastive.x_hierarchical_contrastive_loss__mutmut_82":
        "an empty bank entering the bank branch (shape[1] is the dimension) adds a [Q, 0] block: the same logits",
    "msm.losses.hierarchical_contrastive.x_hierarchical_contrastive_loss__mutmut_83":
        "an empty bank entering the bank branch (>= 0) adds a [Q, 0] block: the same logits",
    "msm.model.document_encoder.xǁDocumentEncoderǁforward__mutmut_14":
        "query indices made on the CPU: PyTorch accepts CPU index tensors for a tensor on any device",
    "msm.model.document_encoder.xǁDocumentEncoderǁforward__mutmut_16":
        "the same (device argument dropped)",
    "msm.model.document_encoder.xǁDocumentEncoderǁforward__mutmut_47":
        "the same for the output rows",
    "msm.model.document_encoder.xǁDocumentEncoderǁforward__mutmut_49":
        "the same for the output rows (device argument dropped)",
    "msm.model.document_encoder.xǁDocumentEncoderǁ__init____mutmut_58":
        "enable_nested_tensor None/True: only the padded positions' outputs differ (zeros), and forward returns masked real sentences",
    "msm.model.document_encoder.xǁDocumentEncoderǁ__init____mutmut_61":
        "the same (argument dropped: default True)",
    "msm.model.document_encoder.xǁDocumentEncoderǁ__init____mutmut_62":
        "the same (True)",
    "msm.losses.memory_bank.xǁLanguageMemoryBankǁ__init____mutmut_20":
        "torch.full(..., -1, dtype=None) infers torch.long from the integer fill value",
    "msm.losses.memory_bank.xǁLanguageMemoryBankǁ__init____mutmut_23":
        "the same (dtype argument dropped)",
    "msm.losses.memory_bank.xǁLanguageMemoryBankǁ__init____mutmut_25":
        "unfilled slots marked -2 instead of -1: ordered() keeps langs >= 0, any negative mark is unfilled",
    "msm.losses.hierarchical_contrastive.x_hierarchical_contrastive_loss__mutmut_59":
        "a shift for rows without same-doc negatives (n_same >= 0) is applied to no logit: it multiplies the row's all-False same-doc mask",
    "msm.tune.config.x_dump_sweep__mutmut_8":
        "`sort_keys=False` -> `sort_keys=None`: PyYAML tests truthiness, None acts as False",
    "msm.retrieval.index.xǁSearchIndexǁsave__mutmut_27":
        "`json.dumps(ensure_ascii=False)` -> `ensure_ascii=None`: json tests truthiness, None acts as False",
    "msm.model.msm.xǁMSMModelǁ__init____mutmut_50":
        "`torch.tensor(special ids, dtype=torch.long)` -> `dtype=None`: a tensor of Python ints is int64 (= long)",
    "msm.model.msm.xǁMSMModelǁ__init____mutmut_52":
        "the same with `dtype` dropped",
    "msm.model.msm.xǁMSMModelǁforward__mutmut_65":
        "`vectors.shape[-1]` -> `shape[+1]`: vectors is 2-D, its last axis is axis 1",
    "msm.model.msm.xǁMSMModelǁforward__mutmut_91":
        "the ablation's denominator `.unsqueeze(-1)` -> `.unsqueeze(+1)`: on a 1-D tensor both add the last axis",
    "msm.model.msm.xǁMSMModelǁforward__mutmut_129":
        "cross-doc sampling score of same-document keys -1.0 -> -2.0: both are below every torch.rand draw in [0, 1)",
    "msm.model.msm.xǁMSMModelǁforward__mutmut_134":
        "`score.topk(k, dim=1)` -> no dim: the default (-1) is axis 1 of the 2-D score matrix",
    "msm.model.msm.xǁMSMModelǁforward__mutmut_154":
        "the bank read even when `memory_bank_size` is 0: a size-0 bank is empty, and an empty bank adds a [Q, 0] "
        "logits block, which changes no sum",
    "msm.model.msm.xǁMSMModelǁload__mutmut_38":
        "`load_state_dict(strict=False)` -> `strict=None`: torch tests truthiness; missing/unexpected keys are "
        "checked by load itself right after",
    "msm.losses.mlm.x_mlm_loss__mutmut_10":
        "`ignore_index=-100` dropped: -100 is F.cross_entropy's default",
    "msm.losses.mlm.x_mask_tokens__mutmut_17":
        "`rand < probability` -> `<=`: differs only when a float32 torch.rand draw equals the probability exactly "
        "(~6e-8 per token for a multiple of 2^-24, never for 0.15)",
    "msm.losses.mlm.x_mask_tokens__mutmut_61":
        "`action < 0.8` -> `<= 0.8`: the same, at exactly 0.8 (see _76)",
    "msm.losses.mlm.x_mask_tokens__mutmut_76":
        "`action >= 0.8` -> `> 0.8`: differs only when a float32 torch.rand draw is exactly 0.8 (probability ~6e-8 "
        "per token), which no test can provoke through the generator",
    "msm.losses.mlm.x_mask_tokens__mutmut_78":
        "`action < 0.9` -> `<= 0.9`: the same, at exactly 0.9",
    # the plumbing (issue 34)
    'msm.uri.x_commit_dir__mutmut_11':
        "the partial marker's text changes: only its presence is ever read",
    'msm.uri.x_commit_dir__mutmut_12':
        "the partial marker's text changes: only its presence is ever read",
    'msm.uri.x_commit_dir__mutmut_21':
        '`recursive=None` on the FileSelector: the default is False',
    'msm.uri.x_commit_dir__mutmut_23':
        '`recursive` dropped from the FileSelector: the default is False',
    'msm.uri.xǁLocationǁjoin__mutmut_6':
        'every plain local Location (resolve, join, sibling, commit_dir) has uri == path',
    'msm.uri.xǁLocationǁmkdir__mutmut_8':
        "`recursive` dropped: pyarrow's create_dir defaults to True",
    'msm.uri.xǁLocationǁread_text__mutmut_3':
        '`"utf-8"` -> `"UTF-8"`: the same codec',
    'msm.uri.xǁLocationǁwrite_text__mutmut_4':
        '`"utf-8"` -> `"UTF-8"`: the same codec',
    'msm.data.outputs.x_document_side__mutmut_6':
        "an array type -> None (inferred): pa.table(..., schema=MERGE) converts it to the schema's type",
    'msm.data.outputs.x_document_side__mutmut_8':
        "an array type -> None (inferred): pa.table(..., schema=MERGE) converts it to the schema's type",
    'msm.data.outputs.x_membership_side__mutmut_14':
        "an array type -> None (inferred): pa.table(..., schema=MERGE) converts it to the schema's type",
    'msm.data.outputs.x_membership_side__mutmut_16':
        "an array type -> None (inferred): pa.table(..., schema=MERGE) converts it to the schema's type",
    'msm.data.outputs.x_membership_side__mutmut_24':
        "an array type -> None (inferred): pa.table(..., schema=MERGE) converts it to the schema's type",
    'msm.data.outputs.x_membership_side__mutmut_26':
        "an array type -> None (inferred): pa.table(..., schema=MERGE) converts it to the schema's type",
    'msm.data.outputs.x_membership_side__mutmut_29':
        "an array type -> None (inferred): pa.table(..., schema=MERGE) converts it to the schema's type",
    'msm.data.outputs.x_membership_side__mutmut_31':
        "an array type -> None (inferred): pa.table(..., schema=MERGE) converts it to the schema's type",
    'msm.data.outputs.x_membership_side__mutmut_37':
        "an array type -> None (inferred): pa.table(..., schema=MERGE) converts it to the schema's type",
    'msm.data.outputs.x_membership_side__mutmut_39':
        "an array type -> None (inferred): pa.table(..., schema=MERGE) converts it to the schema's type",
    'msm.data.outputs.x_merge_document__mutmut_65':
        'an array type -> None (inferred): the final .cast(DOCUMENTS) converts it',
    'msm.data.outputs.x_merge_document__mutmut_67':
        'an array type -> None (inferred): the final .cast(DOCUMENTS) converts it',
    'msm.data.outputs.x_merge_document__mutmut_74':
        'an array type -> None (inferred): the final .cast(DOCUMENTS) converts it',
    'msm.data.outputs.x_merge_document__mutmut_76':
        'an array type -> None (inferred): the final .cast(DOCUMENTS) converts it',
    'msm.data.outputs.x_summarise_counts__mutmut_30':
        '`relabelled.get(key, 0)` -> `get(None, 0)`: each key comes from one unique (part, kept, detected) group, so it is first seen at 0',
    'msm.run_folder.xǁRunFolderǁfetch_dir__mutmut_13':
        '`LocalFileSystem()` -> None: pafs.copy_files picks the local filesystem itself for a plain path',
    'msm.run_folder.xǁRunFolderǁfetch_dir__mutmut_17':
        '`LocalFileSystem()` -> None: pafs.copy_files picks the local filesystem itself for a plain path',
    'msm.run_folder.xǁRunFolderǁput_dir__mutmut_24':
        '`LocalFileSystem()` -> None: pafs.copy_files picks the local filesystem itself for a plain path',
    'msm.run_folder.xǁRunFolderǁput_dir__mutmut_28':
        '`LocalFileSystem()` -> None: pafs.copy_files picks the local filesystem itself for a plain path',
    'msm.run_folder.xǁRunFolderǁfolders__mutmut_7':
        '`recursive` None / dropped on the FileSelector: the default is False',
    'msm.run_folder.xǁRunFolderǁfolders__mutmut_9':
        '`recursive` None / dropped on the FileSelector: the default is False',
    'msm.run_folder.xǁRunFolderǁwrite_config__mutmut_4':
        '`sort_keys=None`: PyYAML reads it as False',
    'msm.finetune.data.x_dedupe__mutmut_7':
        "the pair separator `\\x1f` -> `XX\\x1fXX`: differs only for a plain text holding U+001F at a pair's split point",
    'msm.finetune.data.xǁRayBatchesǁ__call____mutmut_36':
        '`<` -> `<=`: at `len(keep) == size` the refill slice is `[:0]`, nothing is added',
    'msm.finetune.data.xǁRayBatchesǁ__call____mutmut_43':
        '`size - len(keep)` -> `size + len(keep)`: the longer refill is cut by `keep[:size]` to the same rows',
    'msm.finetune.readers.x_file_examples__mutmut_27':
        '`"gzip"` -> `"GZIP"`: pyarrow reads compression names in any case',
    'msm.finetune.readers.x_jsonl_examples__mutmut_13':
        '`"utf-8"` -> `"UTF-8"`: the same codec',
    'msm.finetune.readers.x_squad_examples__mutmut_9':
        '`"utf-8"` -> `"UTF-8"`: the same codec',
    'msm.finetune.readers.x_mewsli_example__mutmut_1':
        'default `hard_negatives` 0 -> 1: Mewsli-X ignores the argument',
    'msm.finetune.readers.x_parquet_examples__mutmut_2':
        '`batch_rows` 4096 -> 4097: only the batch size changes; row numbers carry across batches (tested)',
    'msm.finetune.readers.x_sentence_breaks__mutmut_1':
        'default language `en` -> `XXenXX`: sentencex segments an unknown code as English',
    'msm.finetune.readers.x_sentence_breaks__mutmut_2':
        'default language `en` -> `EN`: sentencex segments it as English',
    'msm.finetune.readers.x_squad_examples__mutmut_2':
        'default language `en` -> `XXenXX`: sentencex segments an unknown code as English',
    'msm.finetune.readers.x_squad_examples__mutmut_3':
        'default language `en` -> `EN`: sentencex segments it as English',
    'msm.finetune.readers.x_sentence_breaks__mutmut_15':
        '`start < 0` -> `<= 0`: start is 0 only when pos is 0, and the fallback then sets start = pos = 0',
    'msm.finetune.readers.x_sentence_breaks__mutmut_16':
        '`start < 0` -> `< 1`: the same',
    'msm.train.corpus.x__commit__mutmut_20':
        'the MANIFEST argument dropped: commit_dir\'s default is the same "manifest.json"',
    'msm.train.corpus.x__commit__mutmut_24':
        '`ensure_ascii=None`: json tests truthiness, None writes non-ASCII as is like False',
    'msm.train.corpus.x_build_local__mutmut_1':
        'default `chunk` 256 -> 257: how many records are prepared at once, not what (chunks 1-256 tested)',
    'msm.train.corpus.x_reason_key__mutmut_4':
        '`split(":")` without maxsplit: element [0] is the same text before the first colon',
    'msm.train.corpus.x_reason_key__mutmut_7':
        '`split(":", 2)`: element [0] is the same',
    'msm.train.corpus.x_tokenised_rows__mutmut_6':
        'blocks computed for quarantined rows too, never used: the row is quarantined either way',
    'msm.train.corpus.xǁ_Writerǁadd__mutmut_3':
        '`>=` -> `>`: close() writes the file of exactly the size limit that is left, so the same files in the same order',
    'msm.train.stream.x_pad__mutmut_5':
        'torch.full with an int fill value is already int64',
    'msm.train.stream.x_pad__mutmut_8':
        'torch.full with an int fill value is already int64',
    'msm.train.stream.x_pad__mutmut_26':
        'a tensor from Python ints is int64; an empty sentence goes into an empty slice',
    'msm.train.stream.x_pad__mutmut_28':
        'a tensor from Python ints is int64; an empty sentence goes into an empty slice',
    'msm.train.stream.xǁBatchStreamǁ_next_group__mutmut_2':
        '`range(2)` -> `range(3)`: the loop always returns or raises on its second pass',
    'msm.train.stream.xǁBatchStreamǁ_next_group__mutmut_32':
        '`Position(..., batches=0)` -> default: batches defaults to 0',
    'msm.train.stream.xǁBatchStreamǁseek__mutmut_5':
        '`batches=0` -> default: batches defaults to 0',
    'msm.train.stream.xǁBatchStreamǁ_next_group__mutmut_36':
        'the message of an unreachable AssertionError',
    'msm.train.stream.xǁBatchStreamǁ_next_group__mutmut_37':
        'the message of an unreachable AssertionError',
    'msm.train.stream.xǁBatchStreamǁ_next_group__mutmut_38':
        'the message of an unreachable AssertionError',
    'msm.data.pair_stage.x__characters__mutmut_6':
        '`zero_copy_only` None / True: no difference on arrays without nulls',
    'msm.data.pair_stage.x__characters__mutmut_13':
        '`zero_copy_only` None / True: no difference on arrays without nulls',
    'msm.data.pair_stage.x_uncertain_language__mutmut_12':
        '`zero_copy_only` None / True: no difference on arrays without nulls',
    'msm.data.pair_stage.x_load_side__mutmut_54':
        '`zero_copy_only` None / True: no difference on arrays without nulls',
    'msm.data.pair_stage.x_load_side__mutmut_55':
        '`zero_copy_only` None / True: no difference on arrays without nulls',
    'msm.data.pair_stage.x_load_side__mutmut_57':
        '`reshape(-1, dim)` -> `reshape(-2, dim)`: numpy reads any negative size as the unknown dimension',
    'msm.data.pair_stage.x_load_side__mutmut_68':
        'a cast to float32 of data that is already float32',
    'msm.data.pair_stage.x_load_side__mutmut_70':
        'a cast to float32 of data that is already float32',
    'msm.data.pair_stage.x__nest__mutmut_6':
        'the empty-blocks array is cast to float32 lists anyway; an extra row is never referenced',
    'msm.data.pair_stage.x__nest__mutmut_8':
        'the empty-blocks array is cast to float32 lists anyway; an extra row is never referenced',
    'msm.data.pair_stage.x__nest__mutmut_9':
        'the empty-blocks array is cast to float32 lists anyway; an extra row is never referenced',
    'msm.data.pair_stage.x__write_pairs__mutmut_43':
        "the score column's type dropped: it is cast to the schema's float32 with the same rounding",
    'msm.data.pair_stage.x__write_pairs__mutmut_45':
        "the score column's type dropped: it is cast to the schema's float32 with the same rounding",
    'msm.data.pair_stage.x_load_side__mutmut_6':
        '`format="parquet"` dropped / None: parquet is the dataset\'s default format',
    'msm.data.pair_stage.x_load_side__mutmut_9':
        '`format="parquet"` dropped / None: parquet is the dataset\'s default format',
    'msm.data.pair_stage.x_load_side__mutmut_120':
        'the sort kind: it only matters for equal doc ids, unique within a partition',
    'msm.data.pair_stage.x_load_side__mutmut_122':
        'the sort kind: it only matters for equal doc ids, unique within a partition',
    'msm.data.pair_stage.x_load_side__mutmut_128':
        'the sort kind: it only matters for equal doc ids, unique within a partition',
    'msm.data.pair_stage.x_load_side__mutmut_124':
        'a numpy string array sorts like the Python strings',
    'msm.data.pair_stage.x_load_side__mutmut_126':
        'a numpy string array sorts like the Python strings',
    'msm.data.pair_stage.x_load_side__mutmut_112':
        "an empty side's arrays: never indexed, or sliced to nothing",
    'msm.data.pair_stage.x_load_side__mutmut_118':
        "an empty side's arrays: never indexed, or sliced to nothing",
    'msm.data.pair_stage.x_load_side__mutmut_130':
        "an empty side's arrays: never indexed, or sliced to nothing",
    'msm.data.pair_stage.x_load_side__mutmut_132':
        "an empty side's arrays: never indexed, or sliced to nothing",
    'msm.data.pair_stage.x_load_side__mutmut_151':
        "an empty side's arrays: never indexed, or sliced to nothing",
    'msm.data.pair_stage.x_pair_language_pair__mutmut_15':
        'the `use` flag with rescore none: pair_documents_with_stats returns before it reads sentences, score_z or length_z',
    'msm.data.pair_stage.x_pair_language_pair__mutmut_16':
        'the `use` flag with rescore none: pair_documents_with_stats returns before it reads sentences, score_z or length_z',
    'msm.data.pair_stage.x_pair_language_pair__mutmut_60':
        'the `use` flag with rescore none: pair_documents_with_stats returns before it reads sentences, score_z or length_z',
    'msm.data.pair_stage.x_pair_language_pair__mutmut_62':
        'the `use` flag with rescore none: pair_documents_with_stats returns before it reads sentences, score_z or length_z',
    'msm.data.pair_stage.x_pair_language_pair__mutmut_64':
        'the `use` flag with rescore none: pair_documents_with_stats returns before it reads sentences, score_z or length_z',
    'msm.data.pair_stage.x_pair_language_pair__mutmut_66':
        'the `use` flag with rescore none: pair_documents_with_stats returns before it reads sentences, score_z or length_z',
    'msm.progress.xǁProgressǁ__init____mutmut_13':
        '`printed = -1` -> `-2`: any negative start prints the first line',
    'msm.progress.xǁProgressǁshow__mutmut_117':
        '`//` -> `/` in the line bucket: differs only for a fractional every_pct; follow uses 10 (every step of totals up to 1000 checked)',
    'msm.progress.xǁProgressǁshow__mutmut_96':
        '`refresh=None`: falsy like False',
    'msm.progress.xǁTailǁpoll__mutmut_26':
        'the offsets.get default: never used, the key is set on the line before',
    'msm.progress.xǁTailǁpoll__mutmut_28':
        'the offsets.get default: never used, the key is set on the line before',
    'msm.progress.xǁTailǁpoll__mutmut_29':
        'the offsets.get default: never used, the key is set on the line before',
}


def stage(keep: bool, modules: list[str], tests: list[str]) -> None:
    """Fresh (or, with ``keep``, synced) copy of the package and the tests in STAGE with mutmut's config."""
    if STAGE.exists() and not keep:
        shutil.rmtree(STAGE)
    (STAGE / "src").mkdir(parents=True, exist_ok=True)
    for name in ("platform/msm", "tests", "configs", "k8s", "jobs"):
        _sync(REPO / name, STAGE / ("src/msm" if name == "platform/msm" else name))
    shutil.copy2(REPO / "tools" / "mutation_plugin.py", STAGE / "mutation_plugin.py")
    toml = "\n".join([
        "[tool.mutmut]",
        'source_paths = ["src/msm"]',
        f"only_mutate = {json.dumps(['src/' + m for m in modules])}",
        f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        'also_copy = ["configs", "k8s", "jobs", "mutation_plugin.py"]',
        "",
        "[tool.pytest.ini_options]",
        "timeout = 600",
        'markers = ["ray: starts a local Ray cluster (slow)", "browser: drives headless Chromium"]',
        "",
    ])
    (STAGE / "pyproject.toml").write_text(toml)


def _sync(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` file by file, leaving files whose bytes are unchanged (and their mtime) alone."""
    for path in src.rglob("*"):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        target = dst / path.relative_to(src)
        if target.is_file() and target.read_bytes() == path.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def run_mutmut(workers: int) -> float:
    env = dict(os.environ, MSM_DATA_DIR=os.environ.get("MSM_DATA_DIR", str(REPO.parent / "shared" / "data")))
    # mutmut forks every mutant from a parent that has already run the tests once (stats, clean run). GNU OpenMP
    # (faiss, torch) is not fork-safe: a child's first parallel region waits forever on the parent's thread team,
    # which mutmut then reports as a timeout, i.e. a "killed" mutant that no test killed. One thread avoids the team.
    env.update({name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    start = time.monotonic()
    mutmut = Path(sys.executable).with_name("mutmut")
    subprocess.run([str(mutmut), "run", "--max-children", str(workers)], cwd=STAGE, env=env, check=True)
    return time.monotonic() - start


def report(elapsed: float | None, module_list: list[str]) -> dict:
    os.chdir(STAGE)
    sys.path.insert(0, str(STAGE))
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    modules, survivors = {}, []
    for module in module_list:
        data = SourceFileMutationData(path=Path("src") / module)
        for _ in range(10):  # a run in progress rewrites the file: retry a torn read
            try:
                data.load()
                break
            except json.JSONDecodeError:
                time.sleep(0.5)
        counts = {"killed": 0, "survived": 0, "equivalent": 0, "other": 0, "timeouts": 0}
        for name, code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[code]
            if name in EQUIVALENT:
                counts["equivalent"] += 1
            elif status in ("killed", "timeout", "segfault", "caught by type check"):
                counts["killed"] += 1  # a hang or crash is a detected mutant
                counts["timeouts"] += status == "timeout"  # shown apart: a loaded machine turns slow runs into these
            elif status == "survived":
                counts["survived"] += 1
                survivors.append({"module": module, "name": name,
                                  "diff": get_diff_for_mutant(name, path=Path("src") / module)})
            else:
                counts["other"] += 1  # no tests / not checked (run stopped early): counted as not killed
                if status != "not checked":
                    survivors.append({"module": module, "name": name, "status": status})
        total = counts["killed"] + counts["survived"] + counts["other"]
        modules[module] = {**counts, "total": total, "killed_pct": round(100 * counts["killed"] / total, 1)
                           if total else None}
    out = {"tool": "mutmut 3", "seconds": elapsed, "workers": 2, "modules": modules, "survivors": survivors,
           "equivalent": EQUIVALENT}
    print(f"{'module':40} {'killed':>6} {'(t/o)':>5} {'surv':>5} {'other':>5} {'equiv':>5} {'total':>5} {'%killed':>7}")
    for module, c in modules.items():
        print(f"{module:40} {c['killed']:6} {c['timeouts']:5} {c['survived']:5} {c['other']:5} {c['equivalent']:5} "
              f"{c['total']:5} {c['killed_pct'] if c['killed_pct'] is not None else '-':>7}")
    if elapsed is not None:
        print(f"mutmut run: {elapsed / 60:.1f} min")
    print(f"\n{len(survivors)} surviving mutants (and mutants no selected test reaches):")
    for s in survivors:
        print(f"--- {s['name']} ({s.get('status', 'survived')})")
        if "diff" in s:
            print("\n".join(line for line in s["diff"].splitlines()[2:] if line[:1] in "+-"))
    return out


def main() -> None:
    global STAGE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", action="store_true", help="reuse .mutation/ and mutmut's cached results")
    ap.add_argument("--report", action="store_true", help="only print the report of the last run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", choices=sorted(SETS), default="core",
                    help="core: losses, model, aligner, metrics, tasks, index, sweep config (>= 90 %%); plumbing: the "
                         "modules that move records between stages (>= 85 %%)")
    ap.add_argument("--stage", type=Path, help="staging folder (default .mutation/, .mutation-plumbing/)")
    ap.add_argument("--out", type=Path, help="JSON report (default benchmarks/results/mutation.json, "
                                             "mutation-plumbing.json)")
    ap.add_argument("--modules", nargs="+", help="only the modules whose path contains one of these (a quick check)")
    ap.add_argument("--tests", nargs="+", help="test selection (default: the set's fast unit tests)")
    args = ap.parse_args()
    set_modules, set_tests, set_json = SETS[args.set]
    STAGE = (args.stage or (STAGE if args.set == "core" else REPO / f".mutation-{args.set}")).resolve()
    args.out = (args.out or RESULTS.with_name(set_json)).resolve()
    args.tests = args.tests or set_tests
    modules = [m for m in set_modules if not args.modules or any(x in m for x in args.modules)]
    elapsed = None
    if not args.report:
        stage(args.keep, modules, args.tests)
        elapsed = run_mutmut(args.workers)
    out = report(elapsed, modules)
    out["set"] = args.set
    out["tests"] = args.tests
    if elapsed is None and args.out.is_file():  # a re-report keeps the run's time and test selection
        previous = json.loads(args.out.read_text())
        out["seconds"], out["tests"] = previous.get("seconds"), previous.get("tests", args.tests)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
