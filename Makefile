# Every target sets itself up: the first run creates .venv with the CPU build of torch.
# For a GPU machine install your CUDA torch into .venv first (see README), then run any target.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DS := $(BIN)/dreamstream

ENV ?= minigrid_empty
OUT ?= data/$(ENV)
DATA ?= data/$(ENV)
WORKERS ?= 2
STEPS ?= 20000
RECIPE ?= configs/corpora/minigrid_doorkey_mixed.yaml
SET ?=

.PHONY: setup train train-offline collect test lint bench stats corpus validate inspect clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 || $(BIN)/pip install -q torch
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

train: $(STAMP)
	$(DS) train --env $(ENV) $(SET)

train-offline: $(STAMP)
	$(DS) train --env $(ENV) --offline --data $(DATA) $(SET)

collect: $(STAMP)
	$(DS) collect --env $(ENV) --out $(OUT) --workers $(WORKERS) --steps $(STEPS) $(SET)

stats: $(STAMP)
	$(DS) stats $(DATA)

validate: $(STAMP)
	$(DS) validate $(DATA)

inspect: $(STAMP)
	$(DS) inspect $(DATA)

corpus: $(STAMP)
	$(DS) corpus $(RECIPE)

bench: $(STAMP)
	$(DS) bench all

lint: $(STAMP)
	$(BIN)/ruff check dreamstream tests

test: $(STAMP)
	$(BIN)/ruff check dreamstream tests
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
