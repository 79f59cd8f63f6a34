"""One default precision for every entry point: ``auto``, bf16 on a GPU with bf16 units and fp32 on the
CPU (where bf16 is slower), taken from :mod:`vla_ros.model.options` by the CLI, the Python API and the
closed-loop and study cores alike (the policy node's parameter: test_nodes_policy.py)."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from PIL import Image

from vla_ros.cli import build_parser, main
from vla_ros.model import options
from vla_ros.model.options import DEFAULT_PRECISION, resolve_precision

# Each command that loads a checkpoint, with just its required arguments.
COMMANDS = [
    ["predict", "--model", "m", "--image", "i.png", "--instruction", "go"],
    ["serve", "--model", "m"],
    ["eval-bag", "bag"],
    ["replay-bag", "bag"],
    ["sim"],
    ["sim-eval", "--model", "m"],
    ["study", "--model", "m"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: argv[0])
def test_every_command_defaults_to_the_shared_precision(argv):
    assert build_parser().parse_args(argv).precision == DEFAULT_PRECISION == "auto"


def test_the_python_api_and_the_cores_default_to_the_shared_precision():
    from vla_ros.eval.closed_loop import vla_policy_factory
    from vla_ros.eval.study import StudyConfig
    from vla_ros.model.loading import load_checkpoint, random_model
    from vla_ros.nodes.closed_loop import ClosedLoopOptions
    from vla_ros.policy.runtime import PolicyConfig

    assert PolicyConfig(checkpoint_dir="m").precision == DEFAULT_PRECISION
    assert ClosedLoopOptions().precision == DEFAULT_PRECISION
    assert StudyConfig(model_dir="m", out_dir="o").precision == DEFAULT_PRECISION
    for function in (load_checkpoint, random_model, vla_policy_factory):
        assert inspect.signature(function).parameters["precision"].default == DEFAULT_PRECISION


def test_auto_is_fp32_on_the_cpu_and_bf16_only_on_a_gpu_with_bf16_units(monkeypatch):
    import torch

    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"  # an explicit choice is kept
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_precision("auto", "cuda") == resolve_precision("auto", "cuda:1") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("auto", "cuda") == "fp32"  # emulated bf16 is slow
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert options.resolve_device("auto") == "cpu" and resolve_precision("auto", "auto") == "fp32"


def test_predict_runs_fp32_on_the_cpu_by_default_and_says_so(tmp_path, capsys):
    from vla_ros.model.tiny import make_tiny_checkpoint

    model = make_tiny_checkpoint(tmp_path / "tiny", seed=0)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "frame.png")
    argv = ["predict", "--model", str(model), "--image", str(tmp_path / "frame.png"), "--instruction", "go"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"
    assert main([*argv, "--precision", "bf16"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "bf16"
