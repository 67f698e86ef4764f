# The two commands of the quick start: `make run` and `make test`.
VENV ?= .venv
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint

run:
	scripts/bootstrap.sh run
	$(VENV)/bin/removeany serve --port $(PORT)

test:
	scripts/bootstrap.sh test
	scripts/test-services.sh
	$(VENV)/bin/ruff check src tests benchmarks training
	$(VENV)/bin/ruff format --check src tests benchmarks training
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check src tests benchmarks training
	$(VENV)/bin/mypy
