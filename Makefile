# The two commands a newcomer needs: `make demo` and `make test`. Each sets up .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test check install run bench clean

$(BIN)/borderwatch: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,web]"
	touch $(BIN)/borderwatch

install: $(BIN)/borderwatch

demo: install  ## run the bot on the bundled seed reports, served on 127.0.0.1
	$(BIN)/borderwatch demo

test: install  ## lint, format check, type check, tests
	bash scripts/check

check: test

run: install  ## poll the configured feeds on their schedules
	$(BIN)/borderwatch run

bench: install  ## benchmarks (see bench/README.md or `python -m bench --help`)
	$(BIN)/python -m pip install --quiet -e ".[dev,web,bench]"
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
