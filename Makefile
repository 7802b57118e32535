# mgcli — every target installs what it needs into .venv on first use.
#   make test    the test suite (what CI runs)
#   make demo    the pipeline on the bundled synthetic sample, on CPU (trains both branches)
#   make setup-mmpose   MMPose + MMDetection for extract-pose --backend mmpose (make test needs it)
#   make bench   the benchmarks in tests/benchmarks/

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MG     := $(VENV)/bin/mg
DEMO   ?= demo
STAMP  := $(VENV)/.mgcli-installed

# torch + torchvision builds that install together (and import together) from the package index.
ifeq ($(shell uname -m),aarch64)
TORCH  ?= torch==2.9.1 torchvision==0.24.1
else
TORCH  ?= torch==2.14.1 torchvision==0.29.1
endif

.PHONY: install setup-mmpose test demo bench clean clean-demo

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,mediapipe]'
	touch $@

# MMPose 1.3.2 for `extract-pose --backend mmpose`. Plain `pip install mmpose` fails (chumpy does
# not build) and mmcv-lite lacks the compiled ops mmpose/mmdet import, so mmcv 2.1.0 is built from
# source (about 12 minutes on 2 cores the first time; pip caches the wheel). torch >= 2.10 headers
# need C++20 while mmcv's setup.py asks for C++17: the cxx20 wrapper puts -std=c++20 last.
MMPOSE_STAMP := $(VENV)/.mmpose-installed
PIN := $(VENV)/pin-torch.txt

setup-mmpose: $(MMPOSE_STAMP)

$(MMPOSE_STAMP): $(STAMP)
	printf '%s\n' $(TORCH) > $(PIN)
	printf '#!/bin/sh\nexec g++ "$$@" -std=c++20\n' > $(VENV)/bin/cxx20 && chmod +x $(VENV)/bin/cxx20
	$(PY) -m pip install -q -c $(PIN) "setuptools<81" wheel ninja cython mmengine==0.10.7
	CXX=$(abspath $(VENV))/bin/cxx20 MMCV_WITH_OPS=1 MAX_JOBS=2 $(PY) -m pip install -q -c $(PIN) \
		--no-build-isolation --no-binary xtcocotools \
		mmcv==2.1.0 mmdet==3.3.0 xtcocotools==1.14.3 json_tricks munkres scipy six
	$(PY) -m pip install -q -c $(PIN) --no-deps mmpose==1.3.2
	touch $@

test: install setup-mmpose
	$(PY) -m pytest -q -n 2

$(DEMO)/sample/sample.json: | install
	$(MG) sample-data $(DEMO)/sample --overwrite

# The release's OpenPose-137 skeletons as they are; heatmaps convert them to a layout.
$(DEMO)/poses.h5: $(DEMO)/sample/sample.json
	$(MG) extract-pose $(DEMO)/sample -o $@ --frames-out $(DEMO)/frames.h5 \
		--frame-size 128 --workers 2 --overwrite

$(DEMO)/heatmaps-joint.h5: $(DEMO)/poses.h5
	$(MG) build-heatmaps $< --layout coco17 --kind joint -o $@ --overwrite

$(DEMO)/heatmaps-limb.h5: $(DEMO)/poses.h5
	$(MG) build-heatmaps $< --layout coco17 --kind limb -o $@ --overwrite

$(DEMO)/heatmaps-upper22.h5: $(DEMO)/poses.h5
	$(MG) build-heatmaps $< --layout upper22 --kind joint -o $@ --overwrite

# The branches, CPU-sized (pipelines/sample_*.yaml), a few minutes each on 2 cores.
$(DEMO)/runs/sample_pose_joint/metrics.json: $(DEMO)/heatmaps-upper22.h5 pipelines/sample_pose_joint.yaml
	$(MG) train-branch -c pipelines/sample_pose_joint.yaml --out-dir $(DEMO)/runs --overwrite \
		data.path=$(DEMO)/heatmaps-upper22.h5

$(DEMO)/runs/sample_rgb/metrics.json: $(DEMO)/poses.h5 pipelines/sample_rgb.yaml
	$(MG) train-branch -c pipelines/sample_rgb.yaml --out-dir $(DEMO)/runs --overwrite \
		data.path=$(DEMO)/frames.h5 data.poses=$(DEMO)/poses.h5

# The two-pathway model with CMF and PRM, started from both branches (a few minutes).
$(DEMO)/runs/sample_rgbpose/metrics.json: $(DEMO)/runs/sample_pose_joint/metrics.json \
		$(DEMO)/runs/sample_rgb/metrics.json pipelines/sample_rgbpose.yaml
	$(MG) train-fused -c pipelines/sample_rgbpose.yaml --out-dir $(DEMO)/runs --overwrite \
		--init-from $(DEMO)/runs/sample_rgb/model.pt $(DEMO)/runs/sample_pose_joint/model.pt \
		data.path=$(DEMO)/frames.h5 data.poses=$(DEMO)/poses.h5

demo: install $(DEMO)/heatmaps-joint.h5 $(DEMO)/heatmaps-limb.h5 \
		$(DEMO)/runs/sample_pose_joint/metrics.json $(DEMO)/runs/sample_rgb/metrics.json \
		$(DEMO)/runs/sample_rgbpose/metrics.json
	$(MG) inspect $(DEMO)/sample
	$(MG) inspect $(DEMO)/poses.h5
	$(MG) inspect $(DEMO)/frames.h5
	$(MG) inspect $(DEMO)/heatmaps-joint.h5
	$(MG) build-heatmaps $(DEMO)/heatmaps-joint.h5 --preview 0001_0 -o $(DEMO)/preview-0001_0.png
	$(MG) inspect $(DEMO)/runs/sample_pose_joint/model.pt
	$(MG) inspect $(DEMO)/runs/sample_pose_joint/scores-test.csv
	$(MG) inspect $(DEMO)/runs/sample_rgbpose/scores-test.csv
	$(MG) models

bench: install
	@for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-demo:
	rm -rf $(DEMO)

clean: clean-demo
	rm -rf $(VENV) *.egg-info .pytest_cache
