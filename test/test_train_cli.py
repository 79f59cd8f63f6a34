"""The three commands end to end on the workcell: record-demos -> train -> sim-eval."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from vla_ros.action import Action
from vla_ros.cli import eval as eval_cli
from vla_ros.cli import train as cli
from vla_ros.data.bag import BagReader, read_messages
from vla_ros.data.dataset import CleaningConfig, load_episodes
from vla_ros.eval.closed_loop import (
    TaskSuccess,
    evaluate_in_workcell,
    expert_factory,
    format_breakdown,
    format_table,
)
from vla_ros.sim import ScriptedExpert, Workcell, workcell_config
from vla_ros.train.record import (
    ACTION_STEP_TOPIC,
    CAMERA_TOPIC,
    EE_POSE_TOPIC,
    INSTRUCTION_TOPIC,
    SCENE_TOPIC,
)

torch.set_num_threads(1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    cli.register(subparsers)
    eval_cli.register(subparsers)
    return parser


def _run(*argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return args.func(args)


def test_recorded_demos_train_a_policy_that_sim_eval_runs(tmp_path, capsys):
    demos = tmp_path / "demos"
    assert _run("record-demos", str(demos), "--task", "move_to", "--episodes", "2", "--image-size", "48") == 0
    bags = sorted(demos.iterdir())
    assert [b.name for b in bags] == ["move_to_seed000000", "move_to_seed000001"]
    with BagReader(bags[0]) as reader:
        topics = set(reader.topics)
    assert {CAMERA_TOPIC, INSTRUCTION_TOPIC, ACTION_STEP_TOPIC, EE_POSE_TOPIC, SCENE_TOPIC} <= topics
    none = CleaningConfig(drop_noop_steps=False, outlier_iqr_k=None, min_steps=1)
    from_steps, _ = load_episodes(bags[:1], cleaning=none)
    assert from_steps[0].instruction.startswith("move to the ")
    assert from_steps[0].images[0].shape == (48, 48, 3)

    # Running the recorder again keeps what is there.
    assert _run("record-demos", str(demos), "--task", "move_to", "--episodes", "2", "--image-size", "48") == 0
    assert "2 already there" in capsys.readouterr().out

    run = tmp_path / "run"
    code = _run(
        "train",
        "--bags",
        str(demos),
        "--init",
        "tiny",
        "--image-size",
        "28",
        "--out",
        str(run),
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--heldout-episodes",
        "1",
        "--control-rate-hz",
        "10",
        "--no-progress",
    )
    assert code == 0
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"val_loss", "val_action_token_accuracy", "val_action_l1"} <= set(metrics[-1])

    # The resume point, exported on its own, is the run's checkpoint; a directory that is not a run
    # gets a clear error and exit code 2.
    assert _run("export-run", str(run), "--dest", str(tmp_path / "exported")) == 0
    assert f"exported step 2 of {run}" in capsys.readouterr().out
    assert (tmp_path / "exported" / "model.safetensors").read_bytes() == (
        run / "checkpoint" / "model.safetensors"
    ).read_bytes()
    assert _run("export-run", str(demos)) == 2
    assert "no train_config.json" in capsys.readouterr().err

    # DAgger: the trained checkpoint drives, the expert labels; kept even though it fails.
    dagger = tmp_path / "dagger"
    code = _run(
        "record-demos",
        str(dagger),
        "--task",
        "move_to",
        "--episodes",
        "1",
        "--seed-start",
        "500",
        "--image-size",
        "48",
        "--max-steps",
        "3",
        "--dagger-model",
        str(run / "checkpoint"),
        "--dagger-beta",
        "0.0",
        "--no-progress",
    )
    assert code == 0
    assert "1 bag(s) written (3 steps)" in capsys.readouterr().out
    dagger_steps, _ = load_episodes([dagger / "move_to_seed000500"], cleaning=none)
    assert len(dagger_steps[0]) == 3

    report = tmp_path / "eval.json"
    code = _run(
        "sim-eval",
        "--model",
        str(run / "checkpoint"),
        "--task",
        "move_to",
        "--episodes",
        "1",
        "--seed-start",
        "1000",
        "--image-size",
        "48",
        "--max-steps",
        "3",
        "--report",
        str(report),
        "--no-progress",
        "--breakdown",
    )
    assert code == 0
    rows = json.loads(report.read_text())
    assert [(r["policy"], r["task"], r["episodes"]) for r in rows] == [
        ("expert", "move_to", 1),
        ("trained", "move_to", 1),
        ("untrained", "move_to", 1),
    ]
    out = capsys.readouterr().out
    assert "| move_to |" in out
    assert "trained move_to:\n  seed 1000: " in out


def test_success_table_has_a_column_per_policy():
    rows = [
        TaskSuccess("expert", "pick_place", 10, 10, 27.0),
        TaskSuccess("trained", "pick_place", 10, 8, 30.0, failed_seeds=[3, 7]),
    ]
    table = format_table(rows)
    assert table.splitlines()[0] == "| task | expert | trained |"
    assert "| pick_place | 100% (10/10) | 80% (8/10) |" in table
    assert np.isclose(rows[1].to_dict()["success_rate"], 0.8)


def test_closed_loop_evaluation_reports_how_far_failed_part_episodes_got():
    """The expert grasps and lifts the named part; a policy that only opens its gripper reaches
    neither, and its closest approach is where home is. Tasks that name no part report no progress."""
    expert = evaluate_in_workcell(
        expert_factory,
        "expert",
        ["pick_place", "move_to"],
        2,
        100000,
        image_size_px=32,
        render=False,
        progress=False,
    )
    pick, move = expert
    assert (pick.successes, pick.grasped, pick.lifted, pick.wrong_part_grasped) == (2, 2, 2, 0)
    assert pick.median_closest_xy_cm < 1.0
    assert move.grasped is None and move.progress_line() == ""

    class Idle:
        name = "idle"

        def predict_action(self, image, instruction):
            return Action(vector=np.array([0, 0, 0, 0, 0, 0, 1.0]))

    (idle,) = evaluate_in_workcell(
        lambda cell: Idle(),
        "idle",
        ["pick_place"],
        2,
        100000,
        image_size_px=32,
        max_steps=3,
        render=False,
        progress=False,
    )
    assert (idle.successes, idle.grasped, idle.lifted, idle.wrong_part_grasped) == (0, 0, 0, 0)
    assert idle.median_closest_xy_cm > 3.0
    table = format_table([*expert, idle])
    assert "expert pick_place: named part grasped 2/2, lifted 2/2; another part grasped 0/2" in table
    assert "idle pick_place: named part grasped 0/2" in table
    assert json.loads(json.dumps(idle.to_dict()))["grasped"] == 0


def test_sim_eval_breakdown_says_how_far_each_episode_got():
    """Per episode, in seed order: the expert reaches, grasps and lifts the named part (placing it is
    its success); a policy that only opens its gripper gets nowhere; a task that names no part has
    only success and steps."""
    pick, move = evaluate_in_workcell(
        expert_factory,
        "expert",
        ["pick_place", "move_to"],
        2,
        100000,
        image_size_px=32,
        render=False,
        progress=False,
    )
    assert [o.seed for o in pick.outcomes] == [100000, 100001]
    for outcome in pick.outcomes:
        assert (outcome.success, outcome.reached, outcome.grasped, outcome.lifted) == (True, True, True, True)
        assert "reached part, grasped, lifted" in outcome.line()
    assert all(o.reached is None for o in move.outcomes)
    assert move.outcomes[0].line() == f"seed 100000: success in {move.outcomes[0].steps} steps"

    class Idle:
        name = "idle"

        def predict_action(self, image, instruction):
            return Action(vector=np.array([0, 0, 0, 0, 0, 0, 1.0]))

    (idle,) = evaluate_in_workcell(
        lambda cell: Idle(),
        "idle",
        ["pick_place"],
        2,
        100000,
        image_size_px=32,
        max_steps=3,
        render=False,
        progress=False,
    )
    assert [(o.success, o.reached, o.grasped, o.lifted) for o in idle.outcomes] == [
        (False, False, False, False)
    ] * 2
    breakdown = format_breakdown([pick, idle])
    assert breakdown.splitlines()[0] == "expert pick_place:"
    assert "idle pick_place:\n  seed 100000: failure in 3 steps; did not reach the part" in breakdown
    assert json.loads(json.dumps(idle.to_dict()))["outcomes"][0]["reached"] is False


def test_parts_sets_how_many_parts_a_layout_holds_when_recording_and_evaluating(tmp_path, capsys):
    demos = tmp_path / "one_part"
    argv = ["record-demos", str(demos), "--task", "move_to_part", "--episodes", "3", "--image-size", "32"]
    assert _run(*argv, "--parts", "1", "--no-progress") == 0
    assert "3 bag(s) written" in capsys.readouterr().out
    for bag in sorted(demos.iterdir()):
        scenes = [m.msg for m in read_messages(bag, [SCENE_TOPIC])]
        assert [len(s.objects) for s in scenes] == [1]
    # The default is unchanged: these seeds hold 2-3 parts.
    default = tmp_path / "default"
    assert _run(*[str(default) if a == str(demos) else a for a in argv], "--no-progress") == 0
    counts = [len(next(iter(read_messages(b, [SCENE_TOPIC]))).msg.objects) for b in sorted(default.iterdir())]
    assert all(2 <= n <= 3 for n in counts)

    # sim-eval lays out its held-out seeds the same way.
    seen: list[int] = []

    def spying_expert(cell: Workcell) -> ScriptedExpert:
        expert = ScriptedExpert(cell)
        predict = expert.predict_action

        def predict_action(image, instruction):
            seen.append(len(cell.layout.parts))
            return predict(image, instruction)

        expert.predict_action = predict_action
        return expert

    results = evaluate_in_workcell(
        spying_expert, "expert", ["move_to_part"], 2, 1000, image_size_px=32, progress=False, num_parts=(1, 1)
    )
    assert results[0].successes == 2 and seen and set(seen) == {1}
    with pytest.raises(ValueError, match="1 <= low <= high"):
        workcell_config(32, (0, 1))
    with pytest.raises(SystemExit, match="N or LOW HIGH"):
        _run(*argv, "--parts", "1", "2", "3")
