# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TRACEMARK_TEST_POSTGRES_URI ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test lint format bench install postgres clean ui ui-test e2e-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The web UI: `npm ci` from package-lock.json, then a production build into the package.
UI_STAMP := ui/node_modules/.installed
UI_BUILD := src/tracemark/server/static/index.html
HOST ?= 127.0.0.1
PORT ?= 5000
DB ?= tracemark.db

$(UI_STAMP): ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
	touch $(UI_STAMP)

$(UI_BUILD): $(UI_STAMP) $(shell find ui/src -type f 2>/dev/null) ui/index.html ui/vite.config.ts
	cd ui && npm run build

ui: $(UI_BUILD)

ui-test: $(UI_STAMP)
	cd ui && npm run lint && npm test

# Debian's Chromium for the e2e tests (CI runs as root on a fresh machine).
e2e-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

run: install ui
	@if ! $(BIN)/tracemark --tracking-uri sqlite:///$(DB) runs list --max-results 1 --json \
			| grep -q '"run_id"'; then \
		echo "Empty database: seeding the demo into $(DB)"; \
		$(BIN)/tracemark --tracking-uri sqlite:///$(DB) demo; \
	fi
	@echo "tracemark UI: http://$(HOST):$(PORT)/"
	$(BIN)/tracemark server --host $(HOST) --port $(PORT) --backend-store-uri sqlite:///$(DB)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Start the local PostgreSQL cluster when it is installed but not running.
postgres:
	@if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
		for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	fi

test: lint postgres ui ui-test e2e-deps
	TRACEMARK_E2E_REQUIRED=1 $(BIN)/pytest -q

bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/tracking.py
	$(BIN)/python bench/tracing.py
	$(BIN)/python bench/autolog.py
	$(BIN)/python bench/server.py
	$(BIN)/python bench/evaluate.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache ui/node_modules src/tracemark/server/static
