# Two commands do all the set-up on a fresh machine:
#   make demo   — create .venv, install expint, run the main study on the default problem
#   make test   — create .venv, install the test/doc tools, run ruff, mypy, the strict docs build
#                 and the test suite
# torch is pinned (an unpinned torch may pull a multi-GB CUDA build).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast test-notorch mutants lint docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	# k-diffusion's samplers, a peer of tests/test_peers.py: its package metadata pulls
	# training tools (clip, wandb, kornia, ...) that its sampling module does not use
	$(PY) -m pip install --quiet --no-deps "k-diffusion==0.1.1.post1"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/expint demo --out results

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir site

# The suite runs in TEST_WORKERS processes (pytest-xdist), each with one BLAS/OpenMP
# thread: two workers on two cores with a 2-thread pool each oversubscribe the cores
# and slow every BLAS-heavy test several-fold.  Tests that are about threads set their
# own pool sizes (threadpoolctl raises them above this start).  --dist loadfile keeps
# each module in one process, so its module-scoped fixtures (mpmath references, learned
# models' reference samples) are computed once.
TEST_WORKERS ?= 2
ONE_THREAD := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

test: lint docs
	$(ONE_THREAD) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15
	$(PY) -m pytest -q -p no:cacheprovider --doctest-modules expint

# the numpy core without torch installed (tests/conftest.py collects the core modules only)
NOTORCH := .venv-notorch
$(NOTORCH)/.installed: pyproject.toml
	$(PYTHON) -m venv $(NOTORCH)
	$(NOTORCH)/bin/python -m pip install --quiet --upgrade pip
	$(NOTORCH)/bin/python -m pip install --quiet -e ".[plot,progress]" pytest pytest-xdist hypothesis mpmath
	touch $@

test-notorch: $(NOTORCH)/.installed
	$(NOTORCH)/bin/python -c "import expint, sys; assert 'torch' not in sys.modules"
	$(ONE_THREAD) $(NOTORCH)/bin/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

# a developer's quick check (under a minute): the tests not marked slow
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# planted bugs the fast tests must catch (prints the kill rate)
mutants: $(STAMP)
	$(PY) tests/mutants.py

bench: $(STAMP)
	$(PY) benchmarks/phi_accuracy.py --out results

clean:
	rm -rf $(VENV) $(NOTORCH) site results .pytest_cache .ruff_cache .hypothesis
