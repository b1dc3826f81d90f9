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
	$(VENV)/pytest $(PYTEST_ARGS)

lint:
	@scripts/bootstrap.sh --dev
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy

bench:
	@scripts/bootstrap.sh --dev
	$(VENV)/python bench/auth.py
	$(VENV)/python bench/sms.py

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .hypothesis
