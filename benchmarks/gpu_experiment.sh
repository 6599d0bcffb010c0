#!/usr/bin/env bash
# docs/RESULTS.md, "On a GPU": the experiment on one GPU machine that has python3 with torch and transformers
# but neither this package nor the internet. The e5-small weights and the data travel in a bundle
# (tools/gpu_bundle.py pack); msm runs from the source tree (PYTHONPATH), with no Ray, faiss or fastText.
#   1. the larger budget: 1000 steps × 16 docs × 16 sentences × 64 tokens on the mined NTREX-128 (19 languages);
#   2. the CPU experiment's budget (50 steps of configs/demo/pretrain.yaml), every variant with seeds 0 and 1.
# Both evaluate on XQuAD-R (full pool) and Tatoeba (all pairs). Results land in $RESULTS (JSON, the two Markdown
# sections, the logs, nvidia-smi samples). Knobs for a dry run on a CPU: LARGE_STEPS, SAME_STEPS, TASKS, PAIRS,
# USE_GPU, LARGE_MINED, LARGE_TIMEOUT, SAME_TIMEOUT.
#     bash benchmarks/gpu_experiment.sh .gpu/bundle
set -uo pipefail
BUNDLE=${1:-.gpu/bundle}
RESULTS=${RESULTS:-${OUT:-outputs/gpu}}
WORK=${WORK:-/tmp/msm-gpu}
PY=${PY:-python3}
mkdir -p "$RESULTS" "$WORK"
export PYTHONPATH=$PWD/platform${PYTHONPATH:+:$PYTHONPATH} MSM_CACHE_DIR=$WORK/cache MSM_DATA_DIR=$WORK/data
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error  # a readable log
USE_GPU=${USE_GPU:-true}
COMMON=(--tasks "${TASKS:-lareqa,tatoeba}" --pairs "${PAIRS:-1000}" --results-md "$RESULTS/sections.md")

(nvidia-smi --query-gpu=timestamp,name,memory.used,memory.total,utilization.gpu --format=csv -lms 1000 \
  > "$RESULTS/nvidia-smi.csv" 2>/dev/null &)
printf '<!-- experiment-gpu-large:start -->\n<!-- experiment-gpu-large:end -->\n<!-- experiment-gpu-same:start -->\n<!-- experiment-gpu-same:end -->\n' \
  > "$RESULTS/sections.md"
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__,
'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
t0=$(date +%s)
$PY tools/gpu_bundle.py unpack --bundle "$BUNDLE" --cache "$WORK/cache" --data-out "$WORK/data" || exit 1
echo "unpacked in $(( $(date +%s) - t0 ))s"

# experiment NAME TIMEOUT ARGS...: one `msm.experiment` run in $WORK/NAME, its log and results.json in $RESULTS
experiment() {
  local name=$1 limit=$2
  shift 2  # EXTRA_SET: more overrides (set per call)
  timeout "$limit" $PY -m msm.experiment --out "$WORK/$name" --section "experiment-gpu-$name" "${COMMON[@]}" "$@" \
    --set run.use_gpu=$USE_GPU run.checkpoint_every=100000 ${EXTRA_SET:-} 2>&1 \
    | tr "\r" "\n" | grep -v -i "^encode:\|warn\|MISSING\|newly init" | tee "$RESULTS/$name.log"
  cp "$WORK/$name/results.json" "$RESULTS/$name.json"
}

experiment large "${LARGE_TIMEOUT:-300}" --config configs/pretrain/e5-small-gpu.yaml \
  --mined "$WORK/data/mined/${LARGE_MINED:-mine-ntrex115}" --variants reference,cross-lingual,no-doc-encoder --seeds 0 \
  --steps "${LARGE_STEPS:-1000}"
tar czf "$RESULTS/large-metrics.tar.gz" -C "$WORK/large" $(cd "$WORK/large" && ls -d */metrics.jsonl 2>/dev/null)

mkdir -p "$WORK/same" && cp "$WORK/large/results.json" "$WORK/same/results.json"  # the start model's scores
EXTRA_SET=run.tensorboard=false experiment same "${SAME_TIMEOUT:-240}" --mined "$WORK/data/mined/mine" --two-seeds all --steps "${SAME_STEPS:-50}"
echo "total $(( $(date +%s) - t0 ))s"
