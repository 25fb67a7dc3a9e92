# The README's contract: `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= runs/demo
PYTEST_ARGS ?=

.PHONY: run test setup clean spaces

setup: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency list changes (idempotent).
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q --upgrade pip "setuptools<81" wheel
	$(BIN)/python -m pip install -q -e ".[nni,postgres,dashboard,hub,test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/nas-prune run --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Regenerate the shipped search spaces in search_spaces/.
spaces: $(STAMP)
	$(BIN)/python -m nas_prune.space.shipped search_spaces

clean:
	rm -rf $(VENV) runs .pytest_cache
