"""The ROS-free core of live replay: how records become a report (no nodes, hand-made records)."""

from __future__ import annotations

import json
import math

import pytest

from vla_ros.eval.live import (
    CommandRecord,
    ControllerCounters,
    PolicyCounters,
    PublishedFrame,
    ReplayOptions,
    StepRecord,
    TwistRecord,
    ros2_bag_play_command,
    summarize_actions,
    summarize_live,
    write_report_json,
)

MS = 1_000_000


def _cmd(index: int, stamp_ms: int, twist, gripper: float | None = 1.0) -> CommandRecord:
    return CommandRecord(0, index, stamp_ms * MS, stamp_ms * MS, (0.0,) * 7, tuple(twist), gripper)


def _out(stamp_ms: int, twist) -> TwistRecord:
    return TwistRecord(stamp_ms * MS, stamp_ms * MS + 1, tuple(float(v) for v in twist))


def test_each_command_is_compared_with_the_last_output_stamped_before_the_next_command() -> None:
    a = (0.05, 0.0, 0.0, 0.0, 0.0, 0.0)
    b = (0.3, 0.0, 0.0, 0.0, 0.0, 0.0)
    commands = [_cmd(0, 0, a), _cmd(1, 200, b), _cmd(2, 400, (math.nan,) * 6, gripper=None)]
    outputs = [
        _out(20, (0.02, 0, 0, 0, 0, 0)),  # ramping up
        _out(180, a),  # settled on command 0
        _out(200, (0.06, 0, 0, 0, 0, 0)),  # stamped at command 1: computed from it, belongs to it
        _out(380, (0.1, 0, 0, 0, 0, 0)),  # command 1, clamped
        _out(420, (0.08, 0, 0, 0, 0, 0)),  # braking after the non-finite command
        _out(700, (0.0,) * 6),  # past the last window (400 + 200 ms)
    ]
    report = summarize_actions(
        commands, outputs, ControllerCounters(), grippers_forwarded=[1.0, 1.0], last_window_s=0.2
    )
    first, second, third = report.outcomes
    assert first.settled_output == a and not first.changed and first.max_abs_difference == 0.0
    assert second.settled_output == (0.1, 0, 0, 0, 0, 0)
    assert second.changed and second.max_abs_difference == pytest.approx(0.2)
    assert third.non_finite and third.changed and third.difference is None
    assert third.settled_output == (0.08, 0, 0, 0, 0, 0)
    assert report.max_abs_difference == pytest.approx(0.2)
    # Over every output in a window (ramps included): 0.3 - 0.06 in command 1's window.
    assert report.max_abs_difference_any_output == pytest.approx(0.24)
    assert report.grippers_sent == 2 and report.grippers_forwarded_equal


def test_a_command_without_any_output_in_its_window_is_reported_as_such() -> None:
    commands = [_cmd(0, 0, (0.01,) * 6), _cmd(1, 200, (0.01,) * 6)]
    report = summarize_actions(commands, [_out(250, (0.01,) * 6)], ControllerCounters(), last_window_s=0.2)
    assert report.outcomes[0].settled_output is None and not report.outcomes[0].changed
    assert report.to_dict()["commands_without_output"] == 1
    assert not report.grippers_forwarded_equal  # two sent, none forwarded


def test_live_report_traces_steps_to_bag_frames_and_measures_latency_from_the_camera_stamp() -> None:
    frames = [
        PublishedFrame(0, k, 5_000 + k, 9_000 * MS + k * 200 * MS, (1000 + k * 200) * MS) for k in range(5)
    ]
    # image_stamp went through float seconds in the policy node: a few hundred ns off.
    steps = [
        StepRecord(1, 1000 * MS + 300, 1150 * MS, 1151 * MS, 0.12, (0.0,) * 7),
        StepRecord(2, 1400 * MS - 250, 1600 * MS, 1602 * MS, 0.15, (0.0,) * 7),
    ]
    twists = [_out(1150, (0.0,) * 6), TwistRecord(1600 * MS, 1605 * MS, (0.1,) * 6)]
    policy = PolicyCounters(frames_received=5, frames_dropped=2, frames_refused_stale=1, steps=2)
    controller = ControllerCounters.from_diagnostic(
        {"commands_received": "2", "commands_accepted": "2", "output_flag_counts": "accel_limited=3"}
    )
    report = summarize_live(
        frames, steps, twists, [_out(1160, (0.1,) * 6), _out(1180, (0,) * 6)], policy, controller
    )
    assert [(a["frame_index"], a["bag_stamp_ns"]) for a in report.acted_bag_frames] == [
        (0, 9_000 * MS),
        (2, 9_400 * MS),
    ]
    lat = report.latency_image_to_twist_s
    assert lat["n"] == 2
    assert lat["max"] == pytest.approx(0.2, abs=1e-6)
    assert lat["p50"] == pytest.approx(0.175, abs=1e-6)
    assert report.latency_image_to_twist_received_s["max"] == pytest.approx(0.205, abs=1e-6)
    assert report.policy_rate_hz == pytest.approx(1 / 0.45)
    assert report.camera_rate_hz == pytest.approx(5.0)
    assert report.consistent and report.to_dict()["frames"]["unaccounted"] == 0
    assert report.controller_nonzero_outputs == 1
    assert report.controller.flags == {"accel_limited": 3}


def test_frames_still_in_inference_show_as_unaccounted() -> None:
    policy = PolicyCounters(frames_received=10, frames_dropped=3, steps=6)
    assert policy.unaccounted == 1
    report = summarize_live([], [], [], [], policy, ControllerCounters())
    assert not report.consistent
    assert "1 unaccounted" in report.summary()


def test_counters_difference_two_diagnostic_snapshots() -> None:
    before = ControllerCounters.from_diagnostic(
        {"commands_received": "3", "outputs": "100", "output_flag_counts": "no_command=50,speed_clamped=2"}
    )
    after = ControllerCounters.from_diagnostic(
        {"commands_received": "13", "outputs": "200", "output_flag_counts": "no_command=50,speed_clamped=9"}
    )
    delta = after.minus(before)
    assert delta.counts == {"commands_received": 10, "outputs": 100}
    assert delta.flags == {"speed_clamped": 7}
    p = PolicyCounters.from_diagnostic({"frames_received": "7", "steps": "3", "rate_hz": "4.5"}).minus(
        PolicyCounters(frames_received=2, steps=1)
    )
    assert (p.frames_received, p.steps, p.rate_hz) == (5, 2, 4.5)


def test_report_json_has_no_nan_and_is_replaced_whole(tmp_path) -> None:
    commands = [_cmd(0, 0, (math.nan,) * 6, gripper=None)]
    report = summarize_actions(commands, [_out(10, (0.0,) * 6)], ControllerCounters(), last_window_s=0.2)
    path = write_report_json(report, tmp_path)
    data = json.loads(path.read_text())  # strict JSON: NaN would not parse in other languages
    assert data["outcomes"][0]["command"] == [None] * 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actions_replay.json"]


def test_ros2_bag_play_command_plays_only_the_input_topics_onto_the_nodes() -> None:
    cmd = ros2_bag_play_command(
        "/data/bag",
        {"/camera/image_raw": "/replay/image_raw", "/vla/instruction": "/replay/instruction"},
        rate=0.5,
        loop=True,
    )
    assert cmd[:4] == ["ros2", "bag", "play", "/data/bag"]
    assert cmd[cmd.index("--rate") + 1] == "0.5"
    assert "--clock" in cmd and cmd[-1] == "--loop"
    topics = cmd[cmd.index("--topics") + 1 : cmd.index("--remap")]
    assert topics == ["/camera/image_raw", "/vla/instruction"]
    assert "/camera/image_raw:=/replay/image_raw" in cmd
    assert "--loop" not in ros2_bag_play_command("b", {"/c": "/r/c"})
    with pytest.raises(ValueError, match="rate"):
        ros2_bag_play_command("b", {"/c": "/r/c"}, rate=0.0)


@pytest.mark.parametrize(
    "field, value, message",
    [("rate", 0.0, "rate"), ("passes", 0, "passes"), ("control_period_s", -1.0, "control_period_s")],
)
def test_replay_options_refuse_values_that_cannot_play(field, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        ReplayOptions(**{field: value})
