# contrastkit: `make demo` runs the main job, `make test` the test suite. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0

.PHONY: demo test bench lint format clean

# The venv is (re)built when pyproject.toml changes; otherwise this is a no-op.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Fashion-MNIST from Debian (package dataset-fashion-mnist), best effort: without it the loaders say where
# else they look, and the tests that read the real files say why they skipped.
FMNIST := /usr/share/datasets/fashion-mnist
$(FMNIST):
	-(command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) || \
	  echo "note: could not install dataset-fashion-mnist (needs root and apt); continuing without it"

# Headless Chromium from Debian (packages chromium and chromium-driver), best effort: the report's browser test
# renders the HTML report with it, `contrastkit serve`'s page is driven in it with Selenium; both say how to install
# it when they skip.
CHROMIUM := /usr/bin/chromedriver
$(CHROMIUM):
	-(command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	  echo "note: could not install chromium (needs root and apt); the browser tests will skip"

# WordNet from Debian (package wordnet-base), best effort: benchmarks/text_retrieval.py's second corpus and the
# test that reads the real files (it says why it skips without them).
WORDNET := /usr/share/wordnet/data.noun
$(WORDNET):
	-(command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base >/dev/null) || \
	  echo "note: could not install wordnet-base (needs root and apt); benchmarks/text_retrieval.py needs it"

# The main job: `contrastkit train` for about five minutes of two CPU cores (the simclr-fashion-mnist recipe at the
# budget it is tuned for: 2 epochs on all 60,000 images), then kNN accuracy on the 10,000 test images against all
# 60,000 training images and linear-probe accuracy (probes fitted on 10,000 of them, to keep the demo short) next to
# the random-init encoder and raw pixels, and the run's HTML report (runs/demo/report.html). Fashion-MNIST when
# present, else scikit-learn's digits.
DEMO_FMNIST := name=demo overwrite=true final_eval.knn_bank_size=60000
DEMO_DIGITS := name=demo overwrite=true
demo: $(STAMP) | $(FMNIST)
	@if $(PY) -c "from contrastkit.data import load_dataset; load_dataset('fashion-mnist')" 2>/dev/null; then \
	  $(VENV)/bin/contrastkit train simclr-fashion-mnist $(DEMO_FMNIST); \
	else \
	  echo "Fashion-MNIST not found (see above): the demo trains on scikit-learn's digits instead"; \
	  $(VENV)/bin/contrastkit train simclr-digits $(DEMO_DIGITS); \
	fi
	@echo "report (curves, t-SNE map, neighbours, similarities, health; open it in a browser):"
	@$(VENV)/bin/contrastkit report runs/demo

test: $(STAMP) | $(FMNIST) $(CHROMIUM) $(WORDNET)
	$(PY) -m pytest -q

bench: $(STAMP) | $(FMNIST) $(WORDNET)
	$(PY) benchmarks/losses.py
	$(PY) benchmarks/views.py
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/quality.py
	$(PY) benchmarks/methods.py
	$(PY) benchmarks/finetune.py
	$(PY) benchmarks/search.py
	$(PY) benchmarks/clip.py
	$(PY) benchmarks/text.py
	$(PY) benchmarks/text_retrieval.py
	$(PY) benchmarks/gradcache.py
	$(PY) benchmarks/faults.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks examples
	$(VENV)/bin/ruff check --fix src tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
