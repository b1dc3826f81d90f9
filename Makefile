# The two commands of the README: `make up` runs the gateway, `make test` runs every check.
.PHONY: up test lint unit bench clean

VENV := .venv/bin

up:
	@scripts/bootstrap.sh
	$(VENV)/trunkline up $(ARGS)

# The suite in two passes. The tests that drive this process and the databases share both cores
# (pytest-xdist, each file on one worker: module fixtures stay whole); those that start SIP
# workers, Kamailio, SIPp, SMSC peers or whole stacks want the machine to themselves (their RTP,
# window and timeout checks) and run after, one at a time.
SERIAL_TESTS := tests/e2e tests/sip tests/sms

test:
	@scripts/bootstrap.sh --dev
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports
	$(VENV)/pytest -n 2 --dist loadfile $(addprefix --ignore=,$(SERIAL_TESTS)) $(PYTEST_ARGS)
	$(VENV)/pytest $(SERIAL_TESTS) $(PYTEST_ARGS)

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
