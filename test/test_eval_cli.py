"""``vla-ros eval-bag`` end to end, through a parser built the way the main CLI builds it."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pytest

from vla_ros.cli.eval import PolicyUnavailableError, load_policy, register
from vla_ros.data.bag import BagWriter
from vla_ros.data.synthetic import write_demo_bag


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vla-ros")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _actions(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(-0.01, 0.01, (n, 6)), (rng.uniform(size=(n, 1)) > 0.5)], axis=1)


def test_eval_bag_with_the_recorded_policy_writes_a_zero_error_report(tmp_path, capsys):
    a = write_demo_bag(tmp_path / "a", _actions(5, 0), storage="mcap")
    b = write_demo_bag(tmp_path / "b", _actions(4, 1), storage="sqlite3", seed=1)
    out = tmp_path / "out"
    args = _parse(["eval-bag", str(a), str(b), "--recorded", "--out", str(out), "--no-progress"])
    assert args.func(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    (row,) = summary["comparison"]
    assert row["model"] == "recorded"
    assert row["steps"] == 9
    assert row["mae_translation_m"] == 0.0 and row["mae_rotation_rad"] == 0.0 and row["mae_gripper"] == 0.0
    assert row["gripper_accuracy"] == 1.0
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert "report.html" in capsys.readouterr().out


def test_eval_bag_reads_teleop_twist_bags_with_topic_options(tmp_path):
    bag = write_demo_bag(tmp_path / "teleop", _actions(4, 2), write=("camera", "twist", "gripper"))
    out = tmp_path / "out"
    argv = [
        "eval-bag",
        str(bag),
        "--recorded",
        "--out",
        str(out),
        "--no-progress",
        "--action-source",
        "twist",
    ]
    argv += ["--instruction", "push the box", "--control-rate-hz", "5"]
    args = _parse(argv)
    assert args.func(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["comparison"][0]["steps"] == 4
    assert summary["episodes"][0]["instruction"] == "push the box"


def test_bag_missing_a_topic_fails_with_a_message_naming_it(tmp_path, capsys):
    bag = write_demo_bag(tmp_path / "a", _actions(3, 0), write=("camera", "instruction"))
    args = _parse(["eval-bag", str(bag), "--recorded", "--out", str(tmp_path / "o"), "--no-progress"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "/vla/action_step is missing (set --action-topic)" in err
    assert "/camera/image_raw (sensor_msgs/msg/Image, 3 msgs)" in err


def test_empty_bag_fails_clearly(tmp_path, capsys):
    with BagWriter(tmp_path / "empty"):
        pass
    args = _parse(["eval-bag", str(tmp_path / "empty"), "--recorded", "--out", str(tmp_path / "o")])
    assert args.func(args) == 2
    assert "contains no messages" in capsys.readouterr().err


def test_eval_bag_needs_a_model_or_the_recorded_policy(tmp_path, capsys):
    bag = write_demo_bag(tmp_path / "a", _actions(3, 0))
    args = _parse(["eval-bag", str(bag), "--out", str(tmp_path / "o")])
    assert args.func(args) == 2
    assert "--model" in capsys.readouterr().err


def test_load_policy_without_the_runtime_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vla_ros.policy.runtime", None)  # import of it now fails
    args = _parse(["eval-bag", "x", "--model", str(tmp_path)])
    with pytest.raises(PolicyUnavailableError, match=r"vla_ros.policy.runtime.*--recorded"):
        load_policy(args, tmp_path, "none")


def test_several_quantizations_are_parsed_for_each_model():
    args = _parse(["eval-bag", "b", "--model", "m1", "--model", "m2", "--quantization", "none", "4bit"])
    assert args.model == ["m1", "m2"]
    assert args.quantization == ["none", "4bit"]
