# Two commands matter: `make test` (set-up + the whole suite) and `make run` (the tweets pipeline without Docker).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test run api lint bench-tweets images clean

setup:
	bash devtools/setup.sh

# Two xdist workers: the end-to-end tests (one group, they share their DAG runs) beside everything else;
# CI's log ends with the 30 slowest tests. PYTEST_ARGS= runs it in one process.
PYTEST_ARGS ?= -n 2 --no-loadscope-reorder --durations=30
test: setup
	source .env.local && $(PY) -m pytest $(PYTEST_ARGS)

run: setup
	source .env.local && $(PY) devtools/run_tweets.py $(ARGS)

# The REST API on the local MariaDB (the TiDB stand-in), database `lakehouse`; key `lakehouse-dev-key`.
api: setup
	source .env.local && LAKEHOUSE_API_DB_PORT=3306 LAKEHOUSE_API_DB_USER=root LAKEHOUSE_API_DB_NAME=lakehouse \
	  LAKEHOUSE_API_KEY_HASHES=$$($(PY) -m include.api.auth hash lakehouse-dev-key) \
	  $(VENV)/bin/uvicorn include.api.app:create_app --factory --host 127.0.0.1 --port 8000 --workers 2 --no-access-log

# The images `astro dev start` does not build (it builds only the Airflow image): run once before the first start and
# after changing spark/ or include/api/. ENGINE=podman builds them offline on the debootstrap base with the local
# jars (devtools/podman/spark_base.sh), as the tests do, tagged localhost/lakehouse-{spark,api}:latest.
ENGINE ?= docker
images:
	if [ "$(ENGINE)" = podman ]; then \
	  $(MAKE) setup && source .env.local && $(PY) -m devtools.podman_stack images; \
	else \
	  docker build -t lakehouse-spark:latest spark && \
	  docker build --build-context spark=spark -t lakehouse-api:latest -f include/api/Dockerfile include; \
	fi

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench-tweets: setup
	source .env.local && $(PY) bench/tweets_spark_vs_duckdb.py $(ARGS)

clean:
	rm -rf .artifacts .pytest_cache .ruff_cache
