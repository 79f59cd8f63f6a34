"""`vla-ros make-tiny-model` and `vla-ros predict`."""

from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image

from vla_ros.cli import model as cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vla-ros")
    cli.register(parser.add_subparsers())
    return parser


def test_make_tiny_model_then_predict_prints_an_action(tmp_path, capsys):
    parser = _parser()
    args = parser.parse_args(["make-tiny-model", str(tmp_path / "tiny"), "--seed", "7"])
    assert args.func(args) == 0
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "frame.png")
    capsys.readouterr()
    args = parser.parse_args(
        [
            "predict",
            "--model",
            str(tmp_path / "tiny"),
            "--image",
            str(tmp_path / "frame.png"),
            "--instruction",
            "Pick up the red cube",
            "--constrain",
        ]
    )
    assert args.func(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed["action"]) == ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]
    assert len(printed["token_ids"]) == 7 and all(31744 <= t < 32000 for t in printed["token_ids"])
    assert printed["unnorm_key"] == "sim_workcell"
