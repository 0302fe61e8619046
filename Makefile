# Every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test lint docs bench bench-quick clean mutants

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PIP) install -e ".[experiments,structure,service]"
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PIP) install -e ".[experiments,structure,test]"
	touch $@

$(VENV)/.docs-installed: pyproject.toml | $(PY)
	$(PIP) install -e ".[experiments,structure,service,docs]"
	touch $@

demo: $(VENV)/.demo-installed
	$(VENV)/bin/mixedts demo

test: $(VENV)/.test-installed
	$(VENV)/bin/ruff check src tests benchmarks tools examples
	$(PY) -m pytest

# The documentation site: site/ (not committed). The tutorials' code runs during the build;
# tools/docs/check_site.py then checks the API coverage, every internal link and image, and
# three pages in headless Chromium (Debian's chromium; screenshots in site/_checks/).
docs: $(VENV)/.docs-installed
	DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict
	$(PY) tools/docs/check_site.py

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check src tests benchmarks tools examples

# Mutation testing of the core formulas (not part of CI): tools/mutants.py applies each mutant to a
# temporary copy of src/, runs the mutant's tests there and writes benchmarks/results_mutants.md.
mutants: $(VENV)/.test-installed
	$(PY) tools/mutants.py

# Benchmarks run in their own environment, with the peer libraries installed there only.
.venv-bench/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip --disable-pip-version-check -q install -e ".[bench]"
	touch $@

bench: .venv-bench/.installed
	.venv-bench/bin/python benchmarks/bench_rounds.py
	.venv-bench/bin/python benchmarks/bench_glm.py

bench-quick: .venv-bench/.installed
	.venv-bench/bin/python benchmarks/bench_rounds.py --quick
	.venv-bench/bin/python benchmarks/bench_glm.py --quick --out benchmarks/results_glm_quick.md

clean:
	rm -rf $(VENV) .venv-bench build dist site src/*.egg-info .pytest_cache .ruff_cache .hypothesis
