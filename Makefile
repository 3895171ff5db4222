# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Both create .venv on first use. torch is pinned to the CPU build that installs offline on
# the development machines; a GPU user runs `make install TORCH_SPEC="torch --index-url ..."`
# (see README) or installs a CUDA build into .venv before `make demo`.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-unit test-ray test-under-load bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mmse demo --out demo_out

test: $(STAMP)
	$(BIN)/python -m pytest

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not ray"

test-ray: $(STAMP)
	$(BIN)/python -m pytest -m ray

# The whole suite while a busy loop per core competes for the CPU (scripts/cpu_hog.py).
test-under-load: $(STAMP)
	$(BIN)/python scripts/cpu_hog.py --seconds 3600 & hog=$$!; \
	$(BIN)/python -m pytest; status=$$?; kill $$hog; exit $$status

bench: $(STAMP)
	$(BIN)/python benchmarks/loop_speed.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
