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

demo: $(STAMP)
	$(PY) examples/simclr_digits.py

test: $(STAMP) | $(FMNIST)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/losses.py
	$(PY) benchmarks/views.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks examples
	$(VENV)/bin/ruff check --fix src tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
