# Every target creates .venv and installs the project into it on first use (or when pyproject.toml changes).
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3

.PHONY: install demo test serve bench lint format clean

$(STAMP): pyproject.toml scripts/system-packages.sh
	scripts/system-packages.sh runtime
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install  ## a simulated day of the city on the embedded PostgreSQL and Redis
	$(BIN)/hanoipay demo

test: install  ## the test suite (embedded servers, or HANOIPAY_TEST_DATABASE_URL / HANOIPAY_TEST_REDIS_URL)
	scripts/system-packages.sh test
	$(BIN)/pytest -q $(PYTEST_ARGS)

serve: install  ## API + worker + cron on embedded servers (or the configured ones)
	$(BIN)/hanoipay serve

bench: install  ## benchmarks, each beside a baseline measured in the same run
	scripts/system-packages.sh bench
	$(BIN)/python bench/payments.py
	$(BIN)/python bench/providers.py
	$(BIN)/python bench/parking.py
	$(BIN)/python bench/merchants.py
	$(BIN)/python bench/tickets.py
	$(BIN)/python bench/reconciliation.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .hanoipay .pytest_cache .mypy_cache .ruff_cache
