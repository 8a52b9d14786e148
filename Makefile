# The two set-up commands of the README. Both create ./.venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint bench

$(BIN)/thorgym: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/thorgym

venv: $(BIN)/thorgym

demo: venv
	$(BIN)/thorgym demo --out runs/demo

test: venv
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 $(BIN)/pytest -n 2 -q

bench: venv
	$(BIN)/thorgym bench sim
