# Shortcuts for the habits .ci/run enforces (the README's commands remain the reference).
.PHONY: lint test bench

lint:
	python3 -m ruff check .
	python3 -m ruff format --check .
	python3 -m mypy

test:
	python3 -m pytest -q

bench:
	python3 bench/bench_pipeline.py --sizes 1
