# Every target sets itself up: the first run creates .venv with the CPU build of torch.
# For a GPU machine install your CUDA torch into .venv first (see README), then run any target.
# SET="..." passes any flag of the target's command, after the target's own (the last of a flag counts).
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

.PHONY: help setup train train-offline collect test lint bench stats corpus validate inspect clean

help: ## this list
	@echo "make TARGET [ENV=preset] [OUT=|DATA=location] [WORKERS=n] [STEPS=n] [RECIPE=file] [SET=\"--flag ...\"]"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-14s %s\n", $$1, $$2}'
	@echo "defaults: ENV=$(ENV) OUT=$(OUT) DATA=$(DATA) WORKERS=$(WORKERS) STEPS=$(STEPS) RECIPE=$(RECIPE)"

setup: $(STAMP) ## create .venv (CPU torch, the pinned stack)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 || $(BIN)/pip install -q torch
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

train: $(STAMP) ## online training of ENV: collectors + learner, run folder in runs/
	$(DS) train --env $(ENV) $(SET)

train-offline: $(STAMP) ## offline training of ENV from DATA, no collector
	$(DS) train --env $(ENV) --offline --data $(DATA) $(SET)

collect: $(STAMP) ## WORKERS collectors of ENV write STEPS rows to OUT
	$(DS) collect --env $(ENV) --out $(OUT) --workers $(WORKERS) --steps $(STEPS) $(SET)

stats: $(STAMP) ## Dask statistics of DATA
	$(DS) stats $(DATA) $(SET)

validate: $(STAMP) ## verify every shard of DATA
	$(DS) validate $(DATA) $(SET)

inspect: $(STAMP) ## shards, episodes, returns of DATA from its commit records
	$(DS) inspect $(DATA) $(SET)

corpus: $(STAMP) ## build the offline corpus of RECIPE
	$(DS) corpus $(RECIPE) $(SET)

bench: $(STAMP) ## every benchmark, each against a same-run baseline
	$(DS) bench all

lint: $(STAMP) ## ruff
	$(BIN)/ruff check dreamstream tests

test: $(STAMP) ## lint + the test suite
	$(BIN)/ruff check dreamstream tests
	$(BIN)/python -m pytest -q

clean: ## remove .venv and caches (data/, runs/ and mlflow.db stay)
	rm -rf $(VENV) .pytest_cache .ruff_cache
