# Two commands do all the set-up on a fresh machine:
#   make demo   — create .venv, install expint, run the main study on the default problem
#   make test   — create .venv, install the test/doc tools, run ruff, the strict docs build
#                 and the test suite
# torch is pinned (an unpinned torch may pull a multi-GB CUDA build).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast mutants lint docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/expint demo --out results

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir site

test: lint docs
	$(PY) -m pytest -q

# a developer's quick check (under a minute): the tests not marked slow
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# planted bugs the fast tests must catch (prints the kill rate)
mutants: $(STAMP)
	$(PY) tests/mutants.py

bench: $(STAMP)
	$(PY) benchmarks/phi_accuracy.py --out results

clean:
	rm -rf $(VENV) site results .pytest_cache .ruff_cache .hypothesis
