# The two commands of the README: `make up` runs the gateway, `make test` runs every check.
.PHONY: up test lint unit bench clean

VENV := .venv/bin

up:
	@scripts/bootstrap.sh
	$(VENV)/trunkline up $(ARGS)

test:
	@scripts/bootstrap.sh --dev
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports
	$(VENV)/pytest $(PYTEST_ARGS)

lint:
	@scripts/bootstrap.sh --dev
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports

bench:
	@scripts/bootstrap.sh --dev
	$(VENV)/python -m bench.api
	$(VENV)/python -m bench.auth
	$(VENV)/python -m bench.sms
	$(VENV)/python -m bench.events
	$(VENV)/python -m bench.numbers

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache
