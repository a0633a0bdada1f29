# Trading Brain — the two commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOME_DIR ?= $(CURDIR)

.PHONY: install test-deps run test bench lint clean

install: $(STAMP)

# Re-installs only when pyproject.toml changed (fast no-op otherwise).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: install
	@$(VENV)/bin/trading-brain --home $(HOME_DIR) init --if-needed
	$(VENV)/bin/trading-brain --home $(HOME_DIR) up

# PostgreSQL server and ansible tools for the deployment tests (see .ci/deps.sh).
test-deps:
	@bash .ci/deps.sh

# Two workers: the suite is CPU-bound and every machine here has 2 cores.
test: install test-deps
	TB_ANSIBLE_BIN=$(CURDIR)/.venv-tools/bin $(PY) -m pytest -q -n 2 --dist loadscope

# Benchmarks are pytest files named bench_*.py; they print their figures (not part of `make test`).
bench: install
	$(PY) -m pytest -q -s -p no:cacheprovider -o addopts="" -o python_files="bench_*.py" trading_brain_tests/benchmarks

# ruff (style, E501, banned imports), import-linter (the layer rules of DESIGN section 2, contracts in
# pyproject.toml) and basedpyright (types, zero errors). `.ci/run` runs it before `make test`.
lint: install
	$(VENV)/bin/ruff check trading_brain trading_brain_tests strategies analyses
	$(VENV)/bin/lint-imports --config pyproject.toml
	$(VENV)/bin/basedpyright

clean:
	rm -rf $(VENV) .venv-tools .pytest_cache
