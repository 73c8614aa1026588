# Two commands matter: `make test` (set-up + the whole suite) and `make run` (the tweets pipeline without Docker).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test run lint bench-tweets clean

setup:
	bash scripts/setup.sh

test: setup
	source .env.local && $(PY) -m pytest

run: setup
	source .env.local && $(PY) scripts/run_tweets.py $(ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench-tweets: setup
	source .env.local && $(PY) bench/tweets_spark_vs_duckdb.py $(ARGS)

clean:
	rm -rf .artifacts .pytest_cache .ruff_cache
