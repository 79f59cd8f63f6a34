"""The command line starts without the heavy libraries: ``vla-ros --help`` and the text-only
``disambiguate`` import neither torch nor PyBullet, so they start in a fraction of a second and print
no library banner."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "bitsandbytes", "peft", "pybullet", "ray")


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"import sys, json\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_help_builds_every_command_without_heavy_imports():
    loaded = _loaded_after("from vla_ros.cli import build_parser\nbuild_parser().format_help()")
    assert not any(loaded.values()), loaded


def test_disambiguate_resolves_without_torch_or_the_simulator(tmp_path):
    scene = tmp_path / "scene.json"
    scene.write_text(
        json.dumps(
            {
                "objects": [
                    {"id": "gear_1", "name": "red gear", "kind": "part", "category": "gear", "color": "red",
                     "position": [0.5, 0.1, 0.0]},
                ],
                "locations": [
                    {"id": "bin_1", "name": "scrap bin", "category": "bin", "role": "reject",
                     "position": [0.3, 0.3, 0.0]},
                ],
                "holding": None,
            }
        )
    )  # fmt: skip
    code = (
        "from vla_ros.cli import main\n"
        f"main(['disambiguate', 'put the red gear in the scrap bin', '--scene', {str(scene)!r}])"
    )
    loaded = _loaded_after(code)
    assert not any(loaded.values()), loaded


def test_loading_the_model_core_prints_no_library_notice():
    run = subprocess.run(
        [sys.executable, "-c", "import vla_ros.policy.runtime, bitsandbytes"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "kernels-community" not in run.stderr + run.stdout


def test_an_8bit_prediction_logs_no_per_call_cast_notice(tmp_path):
    code = (
        "import logging, numpy as np\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "from vla_ros.model.tiny import make_tiny_checkpoint\n"
        "from vla_ros.policy.runtime import PolicyConfig, VLAPolicy\n"
        f"d = make_tiny_checkpoint({str(tmp_path / 'tiny')!r}, seed=0)\n"
        "p = VLAPolicy(PolicyConfig(checkpoint_dir=d, precision='bf16', quantization='8bit'))\n"
        "p.predict_action(np.zeros((64, 64, 3), np.uint8), 'pick up the gear')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "MatMul8bitLt" not in run.stderr + run.stdout
