# The front door: make test, make demo, make lint, make bench.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
export SAM_CLI_TELEMETRY := 0

.PHONY: test demo lint bench validate sam-validate build clean

$(STAMP): requirements-dev.txt layers/creditwatch/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

## test: lint, type-check, validate the template, run every test
test: lint
	$(BIN)/pytest

## lint: ruff (lint + format check), mypy on the shared package, cfn-lint and checkov on the template
lint: $(STAMP) $(CHECKOV_VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python -m sandbox.expand .aws-sam/expanded-template.json
	$(CHECKOV_VENV)/bin/checkov --file .aws-sam/expanded-template.json --framework cloudformation --skip-download --compact --quiet

## demo: run the real handlers against moto and the provider simulator; no AWS account needed
demo: $(STAMP)
	$(BIN)/creditwatch demo

## bench: fleets of 1 to 5000 accounts, cold import, domain and redaction speed (`make build` first for the import)
bench: $(STAMP)
	$(BIN)/python -m bench.run

## sam-validate: `sam validate --lint` with SAM CLI in a venv of its own (it pins boto3 and click)
sam-validate:
	test -x $(SAM_VENV)/bin/sam || ($(PYTHON) -m venv $(SAM_VENV) && $(SAM_VENV)/bin/pip install --quiet aws-sam-cli)
	$(SAM_VENV)/bin/sam validate --lint

## build: sam build (python3.12 must be on PATH; the layer's Makefile compiles it to bytecode)
build: sam-validate
	$(SAM_VENV)/bin/sam build

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .venv-bench312 .aws-sam .pytest_cache .ruff_cache .mypy_cache
