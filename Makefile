# Two entry points for a fresh clone: `make test` and `make demo`.
# Each (re)creates .venv only when what it depends on changed, so a second run
# spends seconds on set-up.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SITE := $(VENV)/lib/python3.11/site-packages
DEPS := $(VENV)/.deps-installed
STUBS := $(VENV)/typestubs/.ready
VISION_MSGS := $(VENV)/.vision-msgs-built
OWN_MSGS := $(VENV)/.mtl-perception-msgs-built
INTERFACE_SOURCES = $(wildcard resource/$(1)/msg/*.msg) resource/$(1)/CMakeLists.txt resource/$(1)/package.xml \
	resource/build_interface.sh resource/cmake/drop_missing_wheel_include_dirs.cmake
# launch, launch_ros and ros2cli as wheels (../shared/ros2-tooling, built from the public sources) and colcon:
# the real `colcon build` and `ros2 launch` in the tests; absent outside this project's machines
ROS_TOOLING_WHEELS := $(wildcard ../shared/ros2-tooling/wheels/*.whl)
ROS_TOOLING := $(VENV)/.ros-tooling
TRT_STUBS_PIN := $(shell sed -n 's/^TENSORRT_STUBS = "\(.*\)"/\1/p' setup.py)
PYTEST_ARGS ?=

# The recipe of the bundled model (models/README.md, docs/training.md "The bundled model's recipe"): randomised
# synthetic scenes, every real training frame of ../shared/real-unlabeled labelled by the teachers of ../shared/teachers
# at their strongest settings (YOLOX-Nano at 960 with a mirrored pass fused by WBF; TwinLiteNet and TwinLiteNetPlus
# small averaged), ImageNet weights from ../shared/weights, the stride-4 segmentation heads, then the project's own
# train and export commands: three stages, each resuming from its own last.pt. NanoDet-m is left out:
# ../shared/teachers/README.md measured it pulling YOLOX-Nano down (0.474 fused, 0.505 alone).
# `make model-resnet50` trains the ResNet50 model (not bundled) on the synthetic scenes alone.
MODEL_DATA := demo_data/train_set
SHARED := ../shared
TEACHERS := $(SHARED)/teachers
REAL := $(SHARED)/real-unlabeled
# the folder names the bundled checkpoint's recipe records (it was "the next model" while it was measured)
REAL_LABELS := demo_data/real_labels_next
MODEL_RUN := runs/mobilenetv2_384x640_next
MODEL_EPOCHS ?= 10
REAL_EPOCHS ?= 4
FINETUNE_EPOCHS ?= 2
PSEUDO_LABEL = $(PY) -m mtl_perception.cli pseudo-label --detector yolox:$(TEACHERS)/yolox_nano_coco_416.onnx@960 \
	--flip --segmenter twinlite:$(TEACHERS)/twinlitenet_360x640.onnx \
	--segmenter twinlite:$(TEACHERS)/twinlitenetplus_small_384x640.onnx --threads 2 --overwrite
IMAGENET_WEIGHTS := $(SHARED)/weights/mobilenet_v2_imagenet_from_coral_tflite.pth
# every stage reads the three sources, decoded and letterboxed once into one cache
MODEL_SOURCES = --data $(MODEL_DATA) --data $(REAL_LABELS)/squashed --data $(REAL_LABELS)/other --workers 0 \
	--cache demo_data/sample_cache --seed 0
MODEL_TRAINED_ON := randomised synthetic scenes (mtl-perception synth --train 1000 --val 150 --seed 1) + 609 real \
	frames of ../shared/real-unlabeled pseudo-labelled by YOLOX-Nano@960 with a mirrored pass (WBF) and TwinLiteNet + \
	TwinLiteNetPlus small; ImageNet start (MobileNetV2 from Coral's TFLite model); stride-4 segmentation heads; \
	10 epochs at weights 2 + 1 + 1.5, 4 at 1 + 1.5 + 1.5, then 2 at 3 + 1 + 1 (2026-12-06)
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

# JetPack's Pythons (pyenv's CPython here): the code that runs on the Jetson is tested under each,
# in a small venv of its own with the NumPy and OpenCV that platform ships (.ci/jetson/*.txt).
JETSON_VENVS := .venv-jetpack5-py38 .venv-jetpack6-py310
JETSON_TESTS = $(shell grep -rl --include="*.py" "pytest.mark.jetson_python" test)
.venv-jetpack5-py38/.ready: PYENV_PY := 3.8.18 python3.8
.venv-jetpack6-py310/.ready: PYENV_PY := 3.10.13 python3.10

# A second ROS 2 distribution: the node's tests against Jazzy's rclpy 7.x (.ci/jazzy/requirements.txt)
JAZZY_VENV := .venv-jazzy
JAZZY_TESTS := test/ros/test_node.py test/ros/test_roundtrip.py

.PHONY: setup venvs test test-jetson-pythons test-jazzy lint typecheck demo bench clean model-mobilenetv2 model-resnet50

setup: $(DEPS) $(STUBS) $(VISION_MSGS) $(OWN_MSGS) $(ROS_TOOLING)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEPS): setup.py package.xml | $(PY)
	$(PY) -m pip install --quiet -e '.[runtime,ros,ros-build,training,pseudo-label,evaluation,toolkit,dev]'
	touch $@

$(STUBS): $(DEPS) .ci/tensorrt_stubs.py
	$(PY) -m pip install --quiet --no-deps '$(TRT_STUBS_PIN)'
	$(PY) .ci/tensorrt_stubs.py $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') $(VENV)/typestubs
	# mypy reads the repaired copy; left installed, the stubs' bare tensorrt/ folder would import as TensorRT
	$(PY) -m pip uninstall --quiet --yes tensorrt-stubs
	touch $@

$(VISION_MSGS): $(DEPS) $(call INTERFACE_SOURCES,vision_msgs)
	resource/build_interface.sh vision_msgs $(VENV)
	touch $@

# mtl_perception_msgs (the ego lane, the road users' velocities) depends on nothing of vision_msgs
$(OWN_MSGS): $(DEPS) $(call INTERFACE_SOURCES,mtl_perception_msgs)
	resource/build_interface.sh mtl_perception_msgs $(VENV)
	touch $@

$(ROS_TOOLING): $(DEPS) .ci/ros-tooling.txt $(ROS_TOOLING_WHEELS)
	@if [ -z "$(ROS_TOOLING_WHEELS)" ]; then \
	  echo "no ../shared/ros2-tooling/wheels here: the colcon build and ros2 launch tests will say so and skip"; \
	else \
	  cd / && $(CURDIR)/$(PY) -m pip install --quiet -r $(CURDIR)/.ci/ros-tooling.txt && \
	  $(CURDIR)/$(PY) -m pip install --quiet --no-deps $(abspath $(ROS_TOOLING_WHEELS)); \
	fi
	touch $@

lint: setup
	$(VENV)/bin/ruff check mtl_perception test launch .ci

typecheck: setup
	$(VENV)/bin/mypy

# The three kinds of venv at once (each by its own serial make): installing them is mostly unpacking wheels and
# waiting on the disk, and they share nothing, so a fresh clone's set-up takes about the longest one's time
venvs:
	@status=0; \
	$(MAKE) --no-print-directory setup & main=$$!; \
	$(MAKE) --no-print-directory $(addsuffix /.ready,$(JETSON_VENVS)) & jetson=$$!; \
	$(MAKE) --no-print-directory $(JAZZY_VENV)/.ready & jazzy=$$!; \
	wait $$main || status=1; wait $$jetson || status=1; wait $$jazzy || status=1; exit $$status

test: venvs lint typecheck test-jetson-pythons test-jazzy
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; echo $$rc > $(VENV)/pytest-exit-code; exit $$rc

# pip runs from / : this checkout's setup.cfg would redirect where it installs scripts
.venv-jetpack5-py38/.ready: .ci/jetson/jetpack5-py38.txt
.venv-jetpack6-py310/.ready: .ci/jetson/jetpack6-py310.txt
$(addsuffix /.ready,$(JETSON_VENVS)):
	@set -- $(PYENV_PY); if ! PYENV_VERSION=$$1 $$2 -c pass 2>/dev/null; then \
	  echo "Python $$1 ($$2) is not installed (pyenv install $$1): cannot test on it" >&2; exit 1; fi; \
	rm -rf $(@D) && PYENV_VERSION=$$1 $$2 -m venv $(@D)
	cd / && $(CURDIR)/$(@D)/bin/python -m pip install --quiet -r $(CURDIR)/$<
	touch $@

$(JAZZY_VENV)/.ready: .ci/jazzy/requirements.txt $(call INTERFACE_SOURCES,vision_msgs) $(call INTERFACE_SOURCES,mtl_perception_msgs)
	@if ! PYENV_VERSION=3.12.1 python3.12 -c pass 2>/dev/null; then \
	  echo "Python 3.12.1 (python3.12) is not installed (pyenv install 3.12.1): cannot test on Jazzy" >&2; exit 1; fi
	rm -rf $(JAZZY_VENV) && PYENV_VERSION=3.12.1 python3.12 -m venv $(JAZZY_VENV)
	cd / && $(CURDIR)/$(JAZZY_VENV)/bin/python -m pip install --quiet -r $(CURDIR)/.ci/jazzy/requirements.txt
	resource/build_interface.sh vision_msgs $(JAZZY_VENV)
	resource/build_interface.sh mtl_perception_msgs $(JAZZY_VENV)
	touch $@

test-jazzy: $(JAZZY_VENV)/.ready
	@echo "== $(JAZZY_VENV): ROS 2 Jazzy, $$($(JAZZY_VENV)/bin/python -c 'import sys, numpy, cv2; from importlib.metadata import version; print("rclpy", version("ros-jazzy-rclpy"), "Python", sys.version.split()[0], "NumPy", numpy.__version__, "OpenCV", cv2.__version__)')"
	ROS_DISTRO=jazzy $(JAZZY_VENV)/bin/python -m pytest -p no:cacheprovider -q $(JAZZY_TESTS)

test-jetson-pythons: $(addsuffix /.ready,$(JETSON_VENVS))
	@for venv in $(JETSON_VENVS); do \
	  echo "== $$venv: $$($$venv/bin/python -c 'import sys, numpy, cv2, onnxruntime as o; print("Python", sys.version.split()[0], "NumPy", numpy.__version__, "OpenCV", cv2.__version__, "onnxruntime", o.__version__)')"; \
	  $$venv/bin/python -m pytest -p no:cacheprovider -q -m jetson_python $(JETSON_TESTS) || exit 1; \
	done

demo: setup
	$(PY) -m mtl_perception.cli demo --data demo_data --out demo_out

bench: setup
	$(PY) -m mtl_perception.cli bench --out bench_out
	$(PY) -m mtl_perception.cli bench-node

$(MODEL_DATA)/labels/det_20/det_val.json: | $(DEPS)
	$(PY) -m mtl_perception.cli synth --out $(MODEL_DATA) --train 1000 --val 150 --seed 1 --workers 2

# Real frames, split by source: the first 25 BDD100K stills (by name) and Udacity's test_video.mp4 (the demo's real
# clip) are the real validation; everything else trains. Squashed BDD100K frames are resized back to 1280x720.
$(REAL_LABELS)/.ready: | $(DEPS)
	rm -rf $(REAL_LABELS) && mkdir -p $(REAL_LABELS)/val_bdd $(REAL_LABELS)/train_bdd
	ls $(REAL)/bdd100k-train-50/*.jpg | sort | head -25 | xargs -I{} ln -s $(abspath .)/{} $(REAL_LABELS)/val_bdd/
	ls $(REAL)/bdd100k-train-50/*.jpg | sort | tail -n +26 | xargs -I{} ln -s $(abspath .)/{} $(REAL_LABELS)/train_bdd/
	$(PSEUDO_LABEL) --out $(REAL_LABELS)/squashed --split train --input $(REAL)/bdd100k-squashed-640-200 --resize 1280x720
	$(PSEUDO_LABEL) --out $(REAL_LABELS)/other --split train --every 3 --input $(REAL_LABELS)/train_bdd \
		--input $(REAL)/bdd100k-twinlitenet-7 --input $(REAL)/udacity/lanelines/solidWhiteRight.mp4 \
		--input $(REAL)/udacity/lanelines $(foreach i,1 2 3 4 5 6,--input $(REAL)/udacity/vehicle-detection/test$(i).jpg) \
		--input $(REAL)/yolop-gifs/input1.gif --input $(REAL)/yolop-gifs/input2.gif
	$(PSEUDO_LABEL) --out $(REAL_LABELS)/val --split val --input $(REAL_LABELS)/val_bdd \
		--input $(REAL)/udacity/vehicle-detection/test_video.mp4 --box-ignore 0.30 --drivable-margin 0 --lane-margin 0
	touch $@

$(REAL_LABELS)/.ready: | $(DEPS)
	rm -rf $(REAL_LABELS) && mkdir -p $(REAL_LABELS)/val_bdd $(REAL_LABELS)/train_bdd
	ls $(REAL)/bdd100k-train-50/*.jpg | sort | head -25 | xargs -I{} ln -s $(abspath .)/{} $(REAL_LABELS)/val_bdd/
	ls $(REAL)/bdd100k-train-50/*.jpg | sort | tail -n +26 | xargs -I{} ln -s $(abspath .)/{} $(REAL_LABELS)/train_bdd/
	$(PSEUDO_LABEL) --out $(REAL_LABELS)/squashed --split train --input $(REAL)/bdd100k-squashed-640-200 \
		--resize 1280x720
	$(PSEUDO_LABEL) --out $(REAL_LABELS)/other --split train --input $(REAL_LABELS)/train_bdd \
		--input $(REAL)/bdd100k-twinlitenet-7 --input $(REAL)/udacity/lanelines/solidWhiteRight.mp4 \
		--input $(REAL)/udacity/lanelines $(foreach i,1 2 3 4 5 6,--input $(REAL)/udacity/vehicle-detection/test$(i).jpg) \
		--input $(REAL)/yolop-gifs/input1.gif --input $(REAL)/yolop-gifs/input2.gif
	$(PSEUDO_LABEL) --out $(REAL_LABELS)/val --split val --input $(REAL_LABELS)/val_bdd \
		--input $(REAL)/udacity/vehicle-detection/test_video.mp4 --box-ignore 0.30 --drivable-margin 0 --lane-margin 0
	touch $@

demo_data/val_rand/labels/det_20/det_val.json: | $(DEPS)
	$(PY) -m mtl_perception.cli synth --out demo_data/val_rand --train 0 --val 150 --seed 2 --workers 2

model-mobilenetv2: setup $(MODEL_DATA)/labels/det_20/det_val.json $(REAL_LABELS)/.ready demo_data/val_rand/labels/det_20/det_val.json
	$(PY) -m mtl_perception.cli train $(MODEL_SOURCES) --data-weights 2,1,1.5 --out $(MODEL_RUN) --backbone mobilenetv2 \
		--img-size 384x640 --batch 8 --seg-head stride4 --epochs $(MODEL_EPOCHS) --seg-epochs $(MODEL_EPOCHS) \
		--backbone-weights $(IMAGENET_WEIGHTS) --normalization unit --frozen-backbone-bn --anchors kmeans --lr 3e-3 \
		$(if $(wildcard $(MODEL_RUN)/last.pt),--resume)
	# more of each epoch on the real frames: vehicles, lanes and the drivable area's precision on the held-back real
	# frames rise, the synthetic lanes fall (0.727 against 0.747)
	$(PY) -m mtl_perception.cli train $(MODEL_SOURCES) --data-weights 1,1.5,1.5 --init-from $(MODEL_RUN)/best.pt \
		--out $(MODEL_RUN)_real --epochs $(REAL_EPOCHS) --lr 1.5e-3 $(if $(wildcard $(MODEL_RUN)_real/last.pt),--resume)
	# then three fifths synthetic gives the synthetic lanes back (0.744)
	$(PY) -m mtl_perception.cli train $(MODEL_SOURCES) --data-weights 3,1,1 --init-from $(MODEL_RUN)_real/best.pt \
		--out $(MODEL_RUN)_real_finetune --epochs $(FINETUNE_EPOCHS) --lr 1e-3 \
		$(if $(wildcard $(MODEL_RUN)_real_finetune/last.pt),--resume)
	$(PY) -m mtl_perception.cli export --checkpoint $(MODEL_RUN)_real_finetune/best.pt --img-size 384x640 \
		--out models/mtl_mobilenetv2_384x640.onnx --keep-checkpoint models/mtl_mobilenetv2_384x640.pt \
		--trained-on "$(MODEL_TRAINED_ON)" --overwrite
	$(PY) -m mtl_perception.cli eval --data demo_data/val_rand --split val --model models/mtl_mobilenetv2_384x640.onnx \
		--json $(MODEL_RUN)_real_finetune/eval_val_rand.json
	$(PY) -m mtl_perception.cli eval --data $(REAL_LABELS)/val --split val --model models/mtl_mobilenetv2_384x640.onnx \
		--json $(MODEL_RUN)_real_finetune/eval_real_val.json

model-resnet50: setup $(MODEL_DATA)/labels/det_20/det_val.json
	$(PY) -m mtl_perception.cli train --data $(MODEL_DATA) --out runs/resnet50_384x640 --backbone resnet50 \
		--img-size 384x640 --batch 8 --epochs 13 --seg-epochs 13 --backbone-weights none --anchors kmeans --lr 4e-3 \
		--workers 1 $(if $(wildcard runs/resnet50_384x640/last.pt),--resume)
	$(PY) -m mtl_perception.cli export --checkpoint runs/resnet50_384x640/best.pt --img-size 384x640 \
		--out models/mtl_resnet50_384x640.onnx --overwrite

clean:
	rm -rf $(VENV) $(JETSON_VENVS) $(JAZZY_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache demo_out bench_out
