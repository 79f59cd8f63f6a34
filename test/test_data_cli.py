"""``vla-ros dataset-stats`` end to end."""

from __future__ import annotations

import argparse
import json

import numpy as np

from vla_ros.cli.data import register
from vla_ros.data.synthetic import write_demo_bag


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vla-ros")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_dataset_stats_writes_statistics_and_the_cleaning_report(tmp_path, capsys):
    rng = np.random.default_rng(0)
    actions = np.concatenate([rng.uniform(-0.01, 0.01, (6, 6)), np.ones((6, 1))], axis=1)
    actions[2, :6] = 0.0  # a no-op step
    bag = write_demo_bag(tmp_path / "demo", actions, storage="sqlite3")
    out = tmp_path / "stats"
    args = _parse(
        ["dataset-stats", str(bag), "--dataset-name", "my_cell", "--out", str(out), "--no-progress"]
    )
    assert args.func(args) == 0
    stats = json.loads((out / "dataset_statistics.json").read_text())
    assert stats["my_cell"]["num_transitions"] == 5
    assert stats["my_cell"]["action"]["max"][0] == max(np.delete(actions, 2, axis=0)[:, 0])
    report = json.loads((out / "cleaning_report.json").read_text())
    assert report["noop_steps_dropped"] == {"demo#0": 1}
    assert "1 no-op step(s) dropped" in capsys.readouterr().out


def test_dataset_stats_on_a_bag_without_the_camera_topic_names_it(tmp_path, capsys):
    bag = write_demo_bag(tmp_path / "demo", np.ones((3, 7)), write=("instruction", "action_step"))
    args = _parse(["dataset-stats", str(bag), "--dataset-name", "x", "--out", str(tmp_path), "--no-progress"])
    assert args.func(args) == 2
    assert "camera topic /camera/image_raw is missing (set --camera-topic)" in capsys.readouterr().err
