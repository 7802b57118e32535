# mgcli — every target installs what it needs into .venv on first use.
#   make test    the test suite, all but the MMPose backend (no compiler needed; CI runs it)
#   make test-mmpose   builds MMPose (mmcv from source) and runs its tests (CI runs it too)
#   make demo    every stage on the bundled synthetic sample, on CPU (about 5 minutes; FAST=1: 2)
#   make demo-emotion   the emotion chain (faces, embeddings, InterFusion, submission) on the emotion sample
#   make demo-online    online recognition (Track 2): a background-aware 2s-AGCN slid over the sample's test videos
#   make reproduce DATA=/path/to/release   the MiGA 2024 winner's final result, stage by stage
#   make reproduce-emotion DATA=/path/to/release   MiGA 2025 Track 3: faces, embeddings, InterFusion
#   make reproduce-online DATA=/path/to/release   MiGA Track 2: background-aware 2s-AGCN, mg detect, submission
#   make setup-mmpose   MMPose + MMDetection for extract-pose --backend mmpose (make test-mmpose needs it)
#   make bench   the benchmarks in tests/benchmarks/
#   make bench-peers   mgcli next to mmaction2 1.2.0 itself (heatmaps, training steps, data pipeline)
#   make bench-real AR_DATA=AR.data.rda [JHMDB_DATA=dir]   skeleton models vs baselines on real skeletons
#   make lint    ruff check and ruff format --check (config in pyproject.toml)

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

.PHONY: install setup-mmpose test test-mmpose lint demo demo-emotion demo-online reproduce reproduce-emotion reproduce-online bench bench-peers bench-real clean clean-demo

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,mediapipe,video]'
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

# `make test` needs no compiler: everything but the MMPose backend (a few minutes with the install).
# `make test-mmpose` builds MMPose (mmcv from source, see setup-mmpose) and runs its tests.
test: install
	$(PY) -m pytest -q -n 2 -m "not mmpose"

test-mmpose: setup-mmpose
	$(PY) -m pytest -q -m mmpose

lint: install
	$(PY) -m ruff check mgcli tests tools
	$(PY) -m ruff format --check mgcli tests tools

# ---------------------------------------------------------------------------------------------
# make demo: every stage on the bundled synthetic sample, on CPU, in about 5 minutes:
#   sample-data -> extract-pose -> build-heatmaps (upper22 joint + limb) -> train-branch (pose J,
#   pose L, RGB) -> train-fused (CMF + PRM, from the RGB and pose J branches) -> ensemble (weights
#   searched on the validation split) -> submit (Kaggle 2025 format).
# It ends with the table of every model's and the ensemble's top-1 and the submission zip.
# make demo FAST=1: the same stages on a smaller sample, one epoch each (what the tests run).
ifeq ($(FAST),1)
SAMPLE_ARGS ?= --videos 8 --gestures 12
DEMO_TRAIN  ?= train.epochs=1 train.val_every=1
endif
SAMPLE_ARGS ?=
DEMO_TRAIN  ?=

.SECONDARY:  # keep the heatmaps and other intermediate artifacts

# A run folder that already finished is replaced (its config changed), one with last.pt resumed.
RUN_MODE = $(if $(wildcard $@),--overwrite,$(if $(wildcard $(@D)/last.pt),--resume,--overwrite))

$(DEMO)/sample/sample.json: | install
	$(MG) sample-data $(DEMO)/sample $(SAMPLE_ARGS) --overwrite

# The release's OpenPose-137 skeletons as they are; heatmaps convert them to a layout.
$(DEMO)/poses.h5: $(DEMO)/sample/sample.json
	$(MG) extract-pose $(DEMO)/sample -o $@ --frames-out $(DEMO)/frames.h5 \
		--frame-size 128 --workers 2 --overwrite

# Both kinds at once (each build is mostly one core); a failure of either fails the target.
$(DEMO)/heatmaps-upper22-joint.h5 $(DEMO)/heatmaps-upper22-limb.h5 &: $(DEMO)/poses.h5
	$(MG) build-heatmaps $< --layout upper22 --kind limb -o $(DEMO)/heatmaps-upper22-limb.h5 --overwrite & \
	limb=$$!; $(MG) build-heatmaps $< --layout upper22 --kind joint -o $(DEMO)/heatmaps-upper22-joint.h5 \
		--overwrite; joint=$$?; wait $$limb && exit $$joint

$(DEMO)/runs/sample_pose_%/scores-test.csv: $(DEMO)/heatmaps-upper22-%.h5 pipelines/sample_pose_%.yaml
	$(MG) train-branch -c pipelines/sample_pose_$*.yaml --out-dir $(DEMO)/runs $(RUN_MODE) \
		data.path=$< $(DEMO_TRAIN)

$(DEMO)/runs/sample_rgb/scores-test.csv: $(DEMO)/poses.h5 pipelines/sample_rgb.yaml
	$(MG) train-branch -c pipelines/sample_rgb.yaml --out-dir $(DEMO)/runs $(RUN_MODE) \
		data.path=$(DEMO)/frames.h5 data.poses=$(DEMO)/poses.h5 $(DEMO_TRAIN)

$(DEMO)/runs/sample_rgbpose/scores-test.csv: $(DEMO)/runs/sample_rgb/scores-test.csv \
		$(DEMO)/runs/sample_pose_joint/scores-test.csv pipelines/sample_rgbpose.yaml
	$(MG) train-fused -c pipelines/sample_rgbpose.yaml --out-dir $(DEMO)/runs $(RUN_MODE) \
		--init-from $(DEMO)/runs/sample_rgb/model.pt $(DEMO)/runs/sample_pose_joint/model.pt \
		data.path=$(DEMO)/frames.h5 data.poses=$(DEMO)/poses.h5 $(DEMO_TRAIN)

DEMO_RUNS := $(addprefix $(DEMO)/runs/,sample_pose_joint sample_pose_limb sample_rgb sample_rgbpose)

demo: install $(addsuffix /scores-test.csv,$(DEMO_RUNS))
	$(MG) ensemble $(DEMO_RUNS) --search-weights -o $(DEMO)/ensemble --overwrite
	$(MG) submit $(DEMO)/ensemble/scores-test.csv --format kaggle2025 --release $(DEMO)/sample \
		-o $(DEMO)/prediction.zip --overwrite

# ---------------------------------------------------------------------------------------------
# make demo-emotion: the emotion chain (MiGA 2025 Track 3) on the emotion sample, on CPU:
#   sample-data --preset emotion -> extract-faces (crops and a preview montage) -> embed
#   face-points and body-motion (descriptors of the sample's OpenPose points: facial-expression
#   geometry, body speeds and self-touching; no weights needed) -> train-fused InterFusion and its
#   two one-stream ablations (each prints its test accuracy) -> submit --task emotion.
# EMBEDDERS=networks embeds with SwinFace (the crops) and MViTv2 (the frames) instead: random init
# here (no weights can be downloaded), so the sample's cues do not survive that route (README).
EMO := $(DEMO)/emotion
EMBEDDERS ?= points
EMO_NETS = $(filter networks,$(EMBEDDERS))
EMO_FACE = $(EMO)/$(if $(EMO_NETS),face-emb,face-points).h5
EMO_CONTEXT = $(EMO)/$(if $(EMO_NETS),context-emb,body-motion).h5
EMO_MODEL_interfusion := interfusion
EMO_MODEL_emotion_face := emotion-face
EMO_MODEL_emotion_context := emotion-context

$(EMO)/sample/sample.json: | install
	$(MG) sample-data $(EMO)/sample --preset emotion --overwrite

$(EMO)/faces.h5: $(EMO)/sample/sample.json
	$(MG) extract-faces $(EMO)/sample -o $@ --fps 1 --preview 0001 --overwrite

$(EMO)/face-points.h5: $(EMO)/sample/sample.json
	$(MG) embed $(EMO)/sample --model face-points -o $@ --overwrite

$(EMO)/body-motion.h5: $(EMO)/sample/sample.json
	$(MG) embed $(EMO)/sample --model body-motion -o $@ --overwrite

$(EMO)/face-emb.h5: $(EMO)/faces.h5
	$(MG) embed $< --model swinface -o $@ --overwrite

$(EMO)/context-emb.h5: $(EMO)/sample/sample.json
	$(MG) embed $(EMO)/sample --model mvit-v2-s --frames 8 --step 2 --size 64 -o $@ --overwrite

$(EMO)/runs/sample_%/scores-test.csv: $(EMO_FACE) $(EMO_CONTEXT) pipelines/sample_interfusion.yaml
	$(MG) train-fused -c pipelines/sample_interfusion.yaml --model $(EMO_MODEL_$*) --name sample_$* \
		--out-dir $(EMO)/runs --overwrite data.path=$(EMO_FACE) 'data.streams=[$(EMO_CONTEXT)]' $(DEMO_TRAIN)

demo-emotion: install $(EMO)/faces.h5 $(foreach r,interfusion emotion_face emotion_context,$(EMO)/runs/sample_$(r)/scores-test.csv)
	$(MG) submit --task emotion $(EMO)/runs/sample_interfusion/scores-test.csv --release $(EMO)/sample \
		-o $(EMO)/prediction.zip --overwrite

# ---------------------------------------------------------------------------------------------
# make demo-online: online recognition (MiGA Track 2) on the default sample, on CPU:
#   extract-pose --background (no-gesture clips from the gaps between gestures, one more class)
#   -> train-branch 2s-AGCN joint (sample_agcn_joint.yaml) -> detect (sliding windows over the
#   test videos, per-frame scores, segments) -> evaluate-online (strict and organisers' F1, a
#   timeline PNG of a test video) -> submit --format online2023.
ONL := $(DEMO)/online
ONL_BG ?= --background 4 --background-window 24
ONL_DETECT ?= --window 32 --stride 8
# a test video of the sample, for the timeline
ONL_VIDEO ?= $(if $(filter 1,$(FAST)),0007,0013)

$(ONL)/poses.h5: $(DEMO)/sample/sample.json
	$(MG) extract-pose $(DEMO)/sample -o $@ $(ONL_BG) --overwrite

$(ONL)/runs/sample_agcn_bg/model.pt: $(ONL)/poses.h5 pipelines/sample_agcn_joint.yaml
	$(MG) train-branch -c pipelines/sample_agcn_joint.yaml --name sample_agcn_bg --out-dir $(ONL)/runs \
		--overwrite data.path=$< $(DEMO_TRAIN)

$(ONL)/detections.csv: $(ONL)/runs/sample_agcn_bg/model.pt
	$(MG) detect $< --data $(ONL)/poses.h5 -o $@ --scores $(ONL)/frame-scores.h5 $(ONL_DETECT) --overwrite

demo-online: install $(ONL)/detections.csv
	$(MG) evaluate-online $(ONL)/detections.csv --release $(DEMO)/sample --timeline $(ONL_VIDEO) -o $(ONL)/online \
		--overwrite
	$(MG) submit $(ONL)/detections.csv --format online2023 --release $(DEMO)/sample \
		-o $(ONL)/online-prediction.zip --overwrite

# ---------------------------------------------------------------------------------------------
# make reproduce DATA=/path/to/release: the MiGA 2024 winner's final result with the pipelines/
# configs: Video Swin-B, the MiGA 2023 winner's joint + limb streams (0.4 / 0.6), and RGBPoseConv3D
# with CMF + PRM (from its RGB and pose branches), ensembled with weights searched on the
# validation split, then the Kaggle submission. Every artifact and run lands in OUT; a stage that
# is built is skipped, an interrupted run resumes. GPUS=N trains on N GPUs (default: all found);
# SEMANTIC=glove.6B.300d.txt adds the MiGA 2023 semantic embedding loss to its two pose streams;
# REPRO_TRAIN adds KEY=VALUE overrides to every training run, REPRO_TRAIN_<run> to one
# (e.g. REPRO_TRAIN_imigue_swin3d_b="train.batch_size=4").
DATA  ?=
OUT   ?= repro
GPUS  ?= $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU')
FRAME_SIZE ?= 256
WORKERS ?= 4
REPRO_TRAIN ?=
SEMANTIC ?=
RUN_ARGS = $(REPRO_TRAIN) $(REPRO_TRAIN_$(notdir $(@D)))
GPU_FLAGS = $(if $(filter-out 0,$(GPUS)),--gpus $(GPUS))
RUNS := $(OUT)/runs
# $(call need_data,TARGET): stop with one line when DATA is not given
need_data = @test -n "$(DATA)" || { echo "make $(1): give DATA=/path/to/the/release"; exit 2; }

$(OUT)/poses.h5: | install
	$(call need_data,reproduce)
	$(MG) extract-pose $(DATA) -o $@ --frames-out $(OUT)/frames.h5 --frame-size $(FRAME_SIZE) \
		--workers $(WORKERS) --overwrite

$(OUT)/heatmaps-coco17-%.h5: $(OUT)/poses.h5
	$(MG) build-heatmaps $< --layout coco17 --kind $* -o $@ --overwrite

$(OUT)/heatmaps-upper22-%.h5: $(OUT)/poses.h5
	$(MG) build-heatmaps $< --layout upper22 --kind $* -o $@ --overwrite

$(RUNS)/imigue_pose_joint/scores-test.csv: $(OUT)/heatmaps-coco17-joint.h5 pipelines/imigue_pose_joint.yaml
	$(MG) train-branch -c pipelines/imigue_pose_joint.yaml --out-dir $(RUNS) $(RUN_MODE) $(GPU_FLAGS) \
		data.path=$< $(RUN_ARGS)

$(RUNS)/imigue_miga2023_%/scores-test.csv: $(OUT)/heatmaps-upper22-%.h5 pipelines/imigue_miga2023_%.yaml
	$(MG) train-branch -c pipelines/imigue_miga2023_$*.yaml --out-dir $(RUNS) $(RUN_MODE) $(GPU_FLAGS) \
		data.path=$< $(if $(SEMANTIC),train.semantic_vectors=$(abspath $(SEMANTIC))) $(RUN_ARGS)

$(RUNS)/imigue_rgb/scores-test.csv $(RUNS)/imigue_swin3d_b/scores-test.csv: \
		$(RUNS)/%/scores-test.csv: $(OUT)/poses.h5 pipelines/%.yaml
	$(MG) train-branch -c pipelines/$*.yaml --out-dir $(RUNS) $(RUN_MODE) $(GPU_FLAGS) \
		data.path=$(OUT)/frames.h5 data.poses=$(OUT)/poses.h5 $(RUN_ARGS)

$(RUNS)/imigue_rgbpose/scores-test.csv: $(RUNS)/imigue_rgb/scores-test.csv \
		$(RUNS)/imigue_pose_joint/scores-test.csv pipelines/imigue_rgbpose.yaml
	$(MG) train-fused -c pipelines/imigue_rgbpose.yaml --out-dir $(RUNS) $(RUN_MODE) $(GPU_FLAGS) \
		--init-from $(RUNS)/imigue_rgb/model.pt $(RUNS)/imigue_pose_joint/model.pt \
		data.path=$(OUT)/frames.h5 data.poses=$(OUT)/poses.h5 $(RUN_ARGS)

reproduce: install $(addsuffix /scores-test.csv,$(addprefix $(RUNS)/,imigue_swin3d_b imigue_miga2023_joint \
		imigue_miga2023_limb imigue_rgbpose))
	$(MG) ensemble $(RUNS)/imigue_miga2023_joint $(RUNS)/imigue_miga2023_limb --weights 0.4,0.6 \
		-o $(OUT)/ensemble/miga2023 --overwrite
	$(MG) ensemble $(RUNS)/imigue_swin3d_b $(OUT)/ensemble/miga2023 $(RUNS)/imigue_rgbpose \
		--search-weights -o $(OUT)/ensemble/final --overwrite
	$(MG) submit $(OUT)/ensemble/final/scores-test.csv --format kaggle2025 --release $(DATA) \
		-o $(OUT)/prediction.zip --overwrite

# make reproduce-emotion DATA=/path/to/release: MiGA 2025 Track 3 (win / lose per video) with
# pipelines/imigue_interfusion.yaml: faces from the release's OpenPose face points, SwinFace
# embeddings (SWINFACE=checkpoint.pt; random init without, said in the output), MViTv2-S context
# embeddings (MVIT_WEIGHTS, default kinetics400: torchvision's, downloaded once; MVIT_ARGS more
# mg embed options, e.g. "--frames 8 --step 2 --size 64" on a CPU), InterFusion and
# its two one-stream ablations, then the submission. EMO_PROTOCOL=imigue2021 uses the original
# iMiGUE split instead of the release's label files; GESTURE_SCORES="a.csv b.csv" (micro-gesture
# scores CSVs of mg evaluate / mg ensemble covering the emotion videos' clips) adds the gesture
# stream to the fused model. OUT, GPUS, REPRO_TRAIN and REPRO_TRAIN_<run> as for make reproduce.
SWINFACE ?=
MVIT_WEIGHTS ?= kinetics400
MVIT_ARGS ?=
EMO_PROTOCOL ?=
GESTURE_SCORES ?=
EMO_SPLIT = $(if $(EMO_PROTOCOL),--protocol $(EMO_PROTOCOL))
EMO_EMB := $(OUT)/face-emb.h5 $(OUT)/context-emb.h5 $(if $(GESTURE_SCORES),$(OUT)/gesture-emb.h5)
EMO_FUSED = data.path=$(OUT)/face-emb.h5 \
	'data.streams=[$(OUT)/context-emb.h5$(if $(GESTURE_SCORES),$(comma)$(OUT)/gesture-emb.h5)]' \
	$(if $(GESTURE_SCORES),'model.streams=[face$(comma)context$(comma)gesture]')
comma := ,

$(OUT)/faces.h5: | install
	$(call need_data,reproduce-emotion)
	$(MG) extract-faces $(DATA) -o $@ $(EMO_SPLIT) --workers $(WORKERS) --resume

$(OUT)/face-emb.h5: $(OUT)/faces.h5
	$(MG) embed $< --model swinface $(if $(SWINFACE),--weights $(SWINFACE)) -o $@ --overwrite

$(OUT)/context-emb.h5: | install
	$(call need_data,reproduce-emotion)
	$(MG) embed $(DATA) --model mvit-v2-s $(if $(MVIT_WEIGHTS),--weights $(MVIT_WEIGHTS)) $(MVIT_ARGS) \
		$(EMO_SPLIT) -o $@ --overwrite

$(OUT)/gesture-emb.h5: $(GESTURE_SCORES) | install
	$(MG) embed $(GESTURE_SCORES) --model gestures --release $(DATA) $(EMO_SPLIT) -o $@ --overwrite

$(RUNS)/imigue_interfusion/scores-test.csv: $(EMO_EMB) pipelines/imigue_interfusion.yaml
	$(MG) train-fused -c pipelines/imigue_interfusion.yaml --out-dir $(RUNS) $(RUN_MODE) $(GPU_FLAGS) \
		$(EMO_FUSED) $(RUN_ARGS)

$(RUNS)/imigue_emotion_face/scores-test.csv $(RUNS)/imigue_emotion_context/scores-test.csv: \
		$(RUNS)/imigue_emotion_%/scores-test.csv: $(OUT)/face-emb.h5 $(OUT)/context-emb.h5 \
		pipelines/imigue_interfusion.yaml
	$(MG) train-fused -c pipelines/imigue_interfusion.yaml --model emotion-$* --name imigue_emotion_$* \
		--out-dir $(RUNS) $(RUN_MODE) $(GPU_FLAGS) data.path=$(OUT)/face-emb.h5 \
		'data.streams=[$(OUT)/context-emb.h5]' $(RUN_ARGS)

reproduce-emotion: install $(addsuffix /scores-test.csv,$(addprefix $(RUNS)/,imigue_interfusion \
		imigue_emotion_face imigue_emotion_context))
	$(MG) submit --task emotion $(RUNS)/imigue_interfusion/scores-test.csv --release $(DATA) $(EMO_SPLIT) \
		-o $(OUT)/emotion-prediction.zip --overwrite

# make reproduce-online DATA=/path/to/release: MiGA Track 2 with the 2s-AGCN joint recipe
# (pipelines/imigue_agcn_joint.yaml) trained with background clips (ONL_REPRO_BG), slid over the
# test videos (ONL_REPRO_DETECT), then the online2023 submission. Give TEST_LABELS=clip_id,label
# CSV to also print the F1 (the release's test label files carry dummy classes).
ONL_REPRO_BG ?= --background 8 --background-window 64
ONL_REPRO_DETECT ?= --window 64 --stride 8
TEST_LABELS ?=

$(OUT)/online/poses.h5: | install
	$(call need_data,reproduce-online)
	$(MG) extract-pose $(DATA) -o $@ --workers $(WORKERS) $(ONL_REPRO_BG) --overwrite

$(RUNS)/imigue_agcn_online/model.pt: $(OUT)/online/poses.h5 pipelines/imigue_agcn_joint.yaml
	$(MG) train-branch -c pipelines/imigue_agcn_joint.yaml --name imigue_agcn_online --out-dir $(RUNS) \
		$(if $(wildcard $(@D)/last.pt),--resume,--overwrite) $(GPU_FLAGS) data.path=$< $(RUN_ARGS)

$(OUT)/online/detections.csv: $(RUNS)/imigue_agcn_online/model.pt
	$(MG) detect $< --data $(OUT)/online/poses.h5 -o $@ --scores $(OUT)/online/frame-scores.h5 \
		$(ONL_REPRO_DETECT) --overwrite

reproduce-online: install $(OUT)/online/detections.csv
	$(if $(TEST_LABELS),$(MG) evaluate-online $(OUT)/online/detections.csv --release $(DATA) --test-labels $(TEST_LABELS) \
		-o $(OUT)/online/online --overwrite)
	$(MG) submit $(OUT)/online/detections.csv --format online2023 --release $(DATA) \
		-o $(OUT)/online-prediction.zip --overwrite

bench: install
	@for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# mgcli next to the real peer, mmaction2 1.2.0, on the same inputs, A/B alternating (tables in
# bench-peers/peers.md): (a) heatmaps vs GeneratePoseTarget, (b) one training step of the same
# PoseConv3D and RGBPoseConv3D, (c) the data pipeline per training sample. mmaction2 lives in a side
# environment, never in the product's: CPU torch 2.13.0 with numpy < 2, mmengine, mmcv-lite (no
# compiled ops) and mmaction2 without its dependencies (decord, opencv-contrib are not needed);
# its wheel misses mmaction/models/localizers/drn, which the side script stubs in-process.
PEERS := .venv-peers
PEERS_STAMP := $(PEERS)/.mmaction-installed

$(PEERS_STAMP):
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install -q --upgrade pip
	$(PEERS)/bin/python -m pip install -q torch==2.13.0 "numpy<2" mmengine==0.10.7 mmcv-lite==2.1.0 \
		scipy einops importlib_metadata
	$(PEERS)/bin/python -m pip install -q --no-deps mmaction2==1.2.0
	touch $@

bench-peers: install $(PEERS_STAMP)
	$(PY) tests/benchmarks/peers/bench_peers.py --peer-python $(PEERS)/bin/python --out bench-peers

# Real skeletons of real people, each set laid out as a release by its converter in tools/:
# AR_DATA, dbcsp's AR.data (272 OpenPose sequences, 6 gestures; data/AR.data.rda of the CRAN package,
# https://github.com/cran/dbcsp), and JHMDB_DATA, a folder with GT_train_1.pkl / GT_test_1.pkl of
# fandulu/DD-Net (JHMDB's annotated 2D joints, 14 actions, official split 1), when given. PoseConv3D
# joint + limb, 2s-AGCN joint + bone and their ensemble, each with its recipe (no config file), 3
# seeds, against a random forest and a temporal CNN; tables in bench-real/{ar,jhmdb}/results.md.
AR_DATA ?= AR.data.rda
JHMDB_DATA ?=
bench-real: install
	$(PY) tests/benchmarks/real/bench_real.py $(AR_DATA) --work bench-real/ar
	$(if $(JHMDB_DATA),$(PY) tests/benchmarks/real/bench_real.py $(JHMDB_DATA) --work bench-real/jhmdb)

clean-demo:
	rm -rf $(DEMO)

clean: clean-demo
	rm -rf $(VENV) $(PEERS) *.egg-info .pytest_cache
