# The two commands of the README. Each sets up what it needs first.
.PHONY: demo test setup setup-test bench

ARGS ?=

demo: setup
	.venv/bin/inkcast demo $(ARGS)

test: setup-test
	.venv/bin/python -m pytest $(ARGS)

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

bench: setup
	.venv/bin/python bench/bench_pipeline.py $(ARGS)
