#!/usr/bin/env bash
# Runs a command with the repo-local venv and the colcon install space sourced, from the repo root.
# The install space (not the source tree) provides `vla_ros`, so the generated messages import.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$here/.venv/bin/activate"
set +u
# shellcheck disable=SC1091
source "$here/install/setup.bash"
set -u
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$@"
