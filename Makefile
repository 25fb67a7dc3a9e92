# The README's contract: `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= runs/demo
PYTEST_ARGS ?=

.PHONY: run test lint docs setup clean spaces figures

setup: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency list changes (idempotent). constraints.txt pins the tested
# versions; pyproject.toml keeps the ranges.
$(STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[nni,postgres,dashboard,hub,timm,test,dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/nas-prune run --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=20 $(PYTEST_ARGS)

# ruff (pycodestyle, pyflakes, isort, bugbear) and lenient mypy, both configured in pyproject.toml;
# the import contract is tests/test_imports.py (run by `make test` too).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_imports.py

# The documentation site (MkDocs + Material, API pages from the docstrings) into site/; strict: a
# warning (a broken link, a docstring that does not match its signature) is an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

# Rebuild the benchmark figures (benchmarks/results/*.html, not committed) from the committed JSON.
figures: $(STAMP)
	$(BIN)/python benchmarks/render.py

# Regenerate the shipped search spaces (package data in nas_prune/space/spaces/, linked as search_spaces/).
spaces: $(STAMP)
	$(BIN)/python -m nas_prune.space.regenerate nas_prune/space/spaces

clean:
	rm -rf $(VENV) runs site .pytest_cache
