# The two commands of the README, and the pieces they are made of.
# Each target installs what it needs: Debian packages, the venv, the Kafka jars (via the stack).
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: demo test lint unit integration faults compat bench stack-up stack-down clean

demo: $(STAMP)
	$(PY) -m streams.cli demo

test: $(STAMP) lint
	$(PY) -m pytest --durations=30 tests/unit tests/integration tests/faults tests/compat

lint: $(STAMP)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check streams connectors schemas deploy
	.venv/bin/mypy
	.venv/bin/lint-imports --no-logo --no-cache

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

faults: $(STAMP)
	$(PY) -m pytest tests/faults

compat: $(STAMP)
	$(PY) -m pytest tests/compat

bench: $(STAMP)
	.venv/bin/stockflow bench

stack-up: $(STAMP)
	.venv/bin/stockflow stack up

stack-down: $(STAMP)
	.venv/bin/stockflow stack down

$(STAMP): pyproject.toml deploy/local/bootstrap.sh
	bash deploy/local/bootstrap.sh
	test -x $(PY) || python3.11 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	-.venv/bin/stockflow stack down
	rm -rf .venv .stack
