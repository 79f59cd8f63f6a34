"""DAgger recording: the learner drives, the expert labels every state the learner reaches."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.action import Action
from vla_ros.data.bag import read_messages
from vla_ros.sim import Workcell, WorkcellConfig
from vla_ros.sim.expert import ExpertConfig
from vla_ros.train.record import ACTION_STEP_TOPIC, EE_POSE_TOPIC, DAggerPolicy, record_demonstrations

UP = np.array([0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 1.0])


class RisingLearner:
    """A learner with one habit (always rise), so where it drives and what the expert says differ."""

    name = "rising"

    def __init__(self, _cell: Workcell | None = None) -> None:
        self.calls = 0

    def predict_action(self, image: np.ndarray, instruction: str) -> Action:
        self.calls += 1
        return Action(vector=UP.copy())


def _expert_move_to_label(ee: np.ndarray, location_xy: tuple[float, float]) -> np.ndarray:
    cfg = ExpertConfig()
    delta = np.array([*location_xy, cfg.move_to_height_m]) - ee
    distance = float(np.linalg.norm(delta))
    return delta * min(1.0, cfg.max_step_m / distance)


def test_dagger_bags_hold_the_learners_states_with_the_experts_labels(tmp_path):
    seed, steps = 3, 5
    summary = record_demonstrations(
        tmp_path,
        tasks=["move_to"],
        episodes=1,
        seed_start=seed,
        image_size_px=32,
        max_steps=steps,
        progress=False,
        learner_factory=RisingLearner,
        beta=0.0,
    )
    # The rising learner never reaches the location, and the episode is kept anyway.
    assert summary.failed_seeds == {"move_to": [seed]} and len(summary.written) == 1
    assert "1 failed episode(s) kept" in summary.summary()
    messages = list(read_messages(summary.written[0], [ACTION_STEP_TOPIC, EE_POSE_TOPIC]))
    labels = np.array([m.msg.action for m in messages if m.topic == ACTION_STEP_TOPIC])
    poses = np.array(
        [
            [m.msg.pose.position.x, m.msg.pose.position.y, m.msg.pose.position.z]
            for m in messages
            if m.topic == EE_POSE_TOPIC
        ]
    )
    assert labels.shape == (steps, 7) and len(poses) == steps + 1  # plus the pose after the last step
    with Workcell(WorkcellConfig(image_width=32, image_height=32)) as cell:
        cell.reset(seed, "move_to")
        location_xy = cell.layout.location(cell.task.location_id).xy_m
    # Where the arm went is the learner's doing: up, step after step...
    assert np.all(np.diff(poses[:, 2]) > 0.01)
    # ...and each label is what the expert would have done from the state the learner left it in.
    for label, ee in zip(labels, poses[:-1], strict=True):
        np.testing.assert_allclose(label[:3], _expert_move_to_label(ee, location_xy), atol=1e-6)
        assert label[6] == 1.0
    assert not np.allclose(labels[:, :3], UP[:3])


def test_beta_one_is_the_expert_alone_and_beta_must_be_a_probability():
    with Workcell(WorkcellConfig(image_width=32, image_height=32)) as cell:
        from vla_ros.sim.expert import ScriptedExpert

        cell.reset(0, "move_to")
        learner = RisingLearner()
        policy = DAggerPolicy(ScriptedExpert(cell), learner, 1.0, np.random.default_rng(0))
        action = policy.predict_action(np.zeros((32, 32, 3), np.uint8), cell.instruction)
        np.testing.assert_array_equal(action.vector, action.extras["label"])
        assert action.extras["executed_by_expert"] and learner.calls == 0
        with pytest.raises(ValueError, match="probability"):
            DAggerPolicy(ScriptedExpert(cell), learner, 1.5, np.random.default_rng(0))


class TwoViewLearner(RisingLearner):
    """A learner trained on two views: it must be handed the wrist frame the recording stores."""

    num_images = 2

    def __init__(self, _cell: Workcell | None = None) -> None:
        super().__init__(_cell)
        self.wrist_frames: list[np.ndarray] = []

    def predict_action(self, image: np.ndarray, instruction: str, extra_images=()) -> Action:
        assert len(extra_images) == 1, "a two-view learner needs its second view every step"
        self.wrist_frames.append(np.array(extra_images[0]))
        return super().predict_action(image, instruction)


def test_a_two_view_learner_drives_on_the_wrist_frames_the_bag_stores(tmp_path):
    from vla_ros.image_codec import image_to_rgb
    from vla_ros.train.record import CAMERA_TOPIC, WRIST_CAMERA_TOPIC

    def decode_image(msg) -> np.ndarray:
        return image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data)

    learners: list[TwoViewLearner] = []

    def factory(cell: Workcell) -> TwoViewLearner:
        learners.append(TwoViewLearner(cell))
        return learners[-1]

    summary = record_demonstrations(
        tmp_path, tasks=["move_to"], episodes=1, seed_start=3, image_size_px=32, max_steps=3,
        progress=False, learner_factory=factory, wrist_camera=True,
    )  # fmt: skip
    messages = list(read_messages(summary.written[0], [CAMERA_TOPIC, WRIST_CAMERA_TOPIC]))
    wrist = [decode_image(m.msg) for m in messages if m.topic == WRIST_CAMERA_TOPIC]
    scene = [decode_image(m.msg) for m in messages if m.topic == CAMERA_TOPIC]
    (learner,) = learners
    assert len(learner.wrist_frames) == len(wrist) == 3
    for seen, stored, scene_frame in zip(learner.wrist_frames, wrist, scene, strict=True):
        np.testing.assert_array_equal(seen, stored)
        assert not np.array_equal(seen, scene_frame)
    # Without the wrist camera the recording is refused before any episode, with the flag to add.
    with pytest.raises(ValueError, match="--wrist-camera"):
        record_demonstrations(
            tmp_path / "no_wrist", tasks=["move_to"], episodes=1, seed_start=3, image_size_px=32,
            max_steps=3, progress=False, learner_factory=TwoViewLearner,
        )  # fmt: skip
