# make demo   set up (or reuse) the environments, then run the whole DAG on the bundled default
# make test   set up (or reuse) the environments, then run the test suite
#
# Two virtual environments: .venv runs the pipeline; .venv-dvc holds DVC, whose dependencies pin
# an antlr4 runtime that conflicts with math-verify's. `dvc` is linked into .venv/bin.

PYTHON ?= python3
VENV := .venv
DVC_VENV := .venv-dvc
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# The bundled default never needs the hub; unset HF_HUB_OFFLINE to let hub ids download.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
PIP := pip install --quiet --disable-pip-version-check

.PHONY: demo test setup lock lint clean

demo: setup
	dvc repro
	@echo "dataset: data/build/dataset/  model: data/sft/model/  metrics: metrics/*.json"

test: setup
	pytest

setup: $(STAMP)

$(STAMP): pyproject.toml constraints/pipeline.txt constraints/dvc.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	# The CPU wheel, first and by exact version, so no resolver ever picks a CUDA build.
	$(VENV)/bin/$(PIP) torch==2.13.0
	$(VENV)/bin/$(PIP) -c constraints/pipeline.txt -e '.[test]'
	test -x $(DVC_VENV)/bin/python || $(PYTHON) -m venv $(DVC_VENV)
	$(DVC_VENV)/bin/$(PIP) -c constraints/dvc.txt dvc
	ln -sf ../../$(DVC_VENV)/bin/dvc $(VENV)/bin/dvc
	touch $@

lock: setup
	{ head -1 constraints/pipeline.txt; $(VENV)/bin/pip freeze --exclude-editable | sed "s/+cpu$$//"; } > constraints/pipeline.txt.new && mv constraints/pipeline.txt.new constraints/pipeline.txt
	{ head -2 constraints/dvc.txt; $(DVC_VENV)/bin/pip freeze; } > constraints/dvc.txt.new && mv constraints/dvc.txt.new constraints/dvc.txt

lint: setup
	snakemake --lint

clean:
	rm -rf $(VENV) $(DVC_VENV) .snakemake logs
