"""Live replay: a synthetic bag played at recorded timing into the real policy and controller nodes."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.ros

RATE_HZ = 5.0  # the synthetic bags' camera / action rate; the policy's control period is 1 / RATE_HZ
N_FRAMES = 12
POLICY_PARAMS = {"precision": "fp32", "device": "cpu", "center_crop": False}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    import torch

    from vla_ros.model.tiny import make_tiny_checkpoint

    torch.set_num_threads(1)
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)


def _demo_actions(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    acts = rng.uniform(-0.005, 0.005, size=(n, 7))
    acts[:, 6] = 1.0
    return acts


def _bag(tmp_path, storage: str, actions: np.ndarray, name: str = "demo"):
    from vla_ros.data.synthetic import write_demo_bag

    return write_demo_bag(tmp_path / f"{name}_{storage}", actions, storage=storage, rate_hz=RATE_HZ)


def test_live_replay_at_recorded_rate_records_outputs_and_accounts_for_every_frame(
    tmp_path, tiny_checkpoint
) -> None:
    from vla_ros.eval.live import ReplayOptions, write_report_json
    from vla_ros.nodes.replay import run_live_replay

    bag = _bag(tmp_path, "mcap", _demo_actions(N_FRAMES))
    report = run_live_replay(
        bag, ReplayOptions(rate=1.0), model_dir=tiny_checkpoint, policy_params=POLICY_PARAMS
    )
    print(report.summary())

    assert report.frames_published == N_FRAMES
    assert 0 < report.frames_delivered <= report.frames_published
    assert report.policy.errors == 0
    assert report.frames_acted + report.frames_dropped + report.frames_refused == report.frames_delivered
    assert report.frames_acted >= 1
    # Every step the policy counted reached the recorder, with its twist.
    assert report.steps_recorded == report.twists_recorded == report.frames_acted
    assert report.consistent
    # Each step is traced back to the bag frame it acted on, with that frame's recorded stamp.
    start_ns, period_ns = 1_000_000_000_000, round(1e9 / RATE_HZ)
    for acted in report.acted_bag_frames:
        assert 0 <= acted["frame_index"] < N_FRAMES
        assert acted["bag_stamp_ns"] == start_ns + acted["frame_index"] * period_ns
    assert len({a["frame_index"] for a in report.acted_bag_frames}) == report.frames_acted
    # Camera stamp -> twist covers at least the inference itself.
    latency, inference = report.latency_image_to_twist_s, report.inference_time_s
    assert latency["n"] == report.frames_acted
    assert latency["p50"] <= latency["p95"] <= latency["max"]
    assert latency["p50"] >= inference["p50"] > 0
    # Frames are paced against an absolute schedule, so the player is never faster than the bag;
    # how much slower depends on how this shared machine schedules it.
    assert 0.5 * RATE_HZ <= report.camera_rate_hz <= 1.02 * RATE_HZ
    # The controller got every policy command and moved the (simulated) arm.
    assert report.controller.counts["commands_received"] == report.frames_acted
    assert report.controller_nonzero_outputs > 0

    path = write_report_json(report, tmp_path / "out")
    data = json.loads(path.read_text())
    assert data["frames"]["consistent"] is True
    assert data["frames"]["acted"] == report.frames_acted
    assert data["latency_s"]["image_stamp_to_twist_stamp"]["p50"] == pytest.approx(latency["p50"])


def test_replay_bag_cli_plays_a_sqlite3_bag_twice_at_double_rate_and_reports_dropped_frames(
    tmp_path, tiny_checkpoint, capsys
) -> None:
    from vla_ros.cli import main

    bag = _bag(tmp_path, "sqlite3", _demo_actions(N_FRAMES))
    out = tmp_path / "report"
    # Frames at 10 Hz, policy limited to 5 steps/s: some frames cannot be acted on.
    rc = main(
        [
            "replay-bag",
            str(bag),
            "--model",
            str(tiny_checkpoint),
            "--rate",
            "2",
            "--passes",
            "2",
            "--precision",
            "fp32",
            "--device",
            "cpu",
            "--policy-param",
            "center_crop=false",
            "--policy-param",
            "max_rate_hz=5.0",
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "dropped" in capsys.readouterr().out
    data = json.loads((out / "live_replay.json").read_text())
    frames = data["frames"]
    assert frames["published"] == 2 * N_FRAMES
    assert frames["delivered"] <= frames["published"]
    assert frames["acted"] + frames["dropped"] + frames["refused_stale"] == frames["delivered"]
    assert frames["acted"] < frames["delivered"]
    assert frames["dropped"] + frames["refused_stale"] > 0
    assert 0.5 * 2 * RATE_HZ <= data["rate_hz"]["camera_published"] <= 1.02 * 2 * RATE_HZ
    assert {a["pass"] for a in data["acted_bag_frames"]} == {0, 1}


def test_actions_only_replay_passes_actions_within_limits_and_clamps_out_of_limit_ones(tmp_path) -> None:
    from vla_ros.eval.live import ReplayOptions
    from vla_ros.nodes.replay import run_actions_replay

    within = [0.01, -0.005, 0.004, 0.02, 0.0, -0.01, 1.0]  # 0.05 m/s, 0.1 rad/s at 5 Hz
    too_fast = [0.04, 0.01, 0.0, 0.0, 0.0, 0.2, 0.0]  # 0.2 m/s and 1.0 rad/s: over the limits
    actions = np.array([within] * 4 + [too_fast] * 4 + [within] * 3 + [[np.nan] * 7])
    bag = _bag(tmp_path, "mcap", actions, name="actions")
    limits = {
        "max_linear_speed_m_s": [0.1, 0.1, 0.1],
        "max_angular_speed_rad_s": [0.5, 0.5, 0.5],
        # Fast enough ramps that each command settles well within its 0.2 s.
        "max_linear_accel_m_s2": 1.0,
        "max_angular_accel_rad_s2": 5.0,
        "command_timeout_s": 1.0,
    }
    report = run_actions_replay(bag, ReplayOptions(rate=1.0), controller_params=limits)
    print(report.summary())

    outcomes = report.outcomes
    assert len(outcomes) == len(actions)
    assert all(o.settled_output is not None for o in outcomes)
    for o in outcomes[:4] + outcomes[8:11]:
        np.testing.assert_allclose(o.settled_output, np.array(within[:6]) * RATE_HZ, atol=1e-9)
        assert not o.changed
    # Per axis limits, direction kept: the linear part is scaled by 0.1 / 0.2, the angular by 0.5 / 1.0.
    clamped = np.array([0.2, 0.05, 0.0, 0.0, 0.0, 1.0])
    clamped[:3] *= 0.1 / 0.2
    clamped[3:] *= 0.5 / 1.0
    for o in outcomes[4:8]:
        np.testing.assert_allclose(o.command, np.array(too_fast[:6]) * RATE_HZ, atol=1e-12)
        np.testing.assert_allclose(o.settled_output, clamped, atol=1e-9)
        assert o.changed
    assert outcomes[-1].non_finite and outcomes[-1].changed
    assert len(report.commands_changed) == 5
    assert report.max_abs_difference == pytest.approx(0.5, abs=1e-9)  # 1.0 rad/s commanded, 0.5 sent
    counts = report.controller.counts
    assert counts["commands_received"] == len(actions)
    assert counts["commands_rejected_non_finite"] == 1
    assert report.controller.flags.get("speed_clamped", 0) > 0
    # Gripper commands pass through unchanged (the non-finite one is not sent).
    assert report.grippers_sent == report.grippers_forwarded == len(actions) - 1
    assert report.grippers_forwarded_equal


def test_replay_of_a_bag_without_the_camera_topic_names_what_is_missing(tmp_path, capsys) -> None:
    from vla_ros.cli import main
    from vla_ros.data.synthetic import write_demo_bag

    bag = write_demo_bag(tmp_path / "no_camera", _demo_actions(3), write=("instruction", "action_step"))
    rc = main(["replay-bag", str(bag), "--model", str(tmp_path / "unused"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "camera topic /camera/image_raw is missing" in err and "--camera-topic" in err
    assert not (tmp_path / "o").exists()


class WristWatchingPolicy:
    """A two-view policy that keeps the frames it was handed, so the test can check the pairing."""

    name = "wrist_watching"
    num_images = 2

    def __init__(self) -> None:
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []

    def predict_action(self, image, instruction, extra_images=()):
        from vla_ros.action import Action

        (wrist,) = extra_images
        self.seen.append((np.array(image), np.array(wrist)))
        return Action(vector=np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]))


def test_live_replay_of_a_two_view_bag_hands_each_scene_frame_its_own_wrist_frame(tmp_path) -> None:
    from vla_ros.data.bag import read_messages
    from vla_ros.eval.live import ReplayError, ReplayOptions
    from vla_ros.image_codec import image_to_rgb
    from vla_ros.nodes.replay import run_live_replay
    from vla_ros.train.record import CAMERA_TOPIC, WRIST_CAMERA_TOPIC, record_demonstrations

    summary = record_demonstrations(
        tmp_path / "bags", tasks=["move_to"], episodes=1, seed_start=0, image_size_px=32, max_steps=6,
        progress=False, keep_failures=True, wrist_camera=True,
    )  # fmt: skip
    (bag,) = summary.written
    frames = {CAMERA_TOPIC: [], WRIST_CAMERA_TOPIC: []}
    for m in read_messages(bag, list(frames)):
        frames[m.topic].append(
            image_to_rgb(m.msg.encoding, m.msg.height, m.msg.width, m.msg.step, m.msg.data)
        )
    scene, wrist = frames[CAMERA_TOPIC], frames[WRIST_CAMERA_TOPIC]
    assert len(scene) == len(wrist) == 6

    policy = WristWatchingPolicy()
    with pytest.raises(ReplayError, match="--wrist-camera-topic"):
        run_live_replay(bag, ReplayOptions(), policy=policy)
    report = run_live_replay(
        bag,
        ReplayOptions(wrist_camera_topic=WRIST_CAMERA_TOPIC),
        policy=policy,
        policy_params={"max_rate_hz": 50.0},
    )
    print(report.summary())
    assert report.frames_published == 6 and report.policy.errors == 0
    assert report.frames_acted >= 1 and len(policy.seen) == report.frames_acted
    for acted, (image, wrist_seen) in zip(report.acted_bag_frames, policy.seen, strict=True):
        k = acted["frame_index"]
        np.testing.assert_array_equal(image, scene[k])
        # The wrist frame recorded with this scene frame, not the one of the step before.
        np.testing.assert_array_equal(wrist_seen, wrist[k])
        if k > 0:
            assert not np.array_equal(wrist_seen, wrist[k - 1])
