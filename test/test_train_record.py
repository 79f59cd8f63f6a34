"""Recording demonstrations from random starts: the arm starts away from home, the expert still succeeds."""

from __future__ import annotations

import numpy as np

from vla_ros.data.bag import read_messages
from vla_ros.sim import Workcell, WorkcellConfig
from vla_ros.train.record import (
    ACTION_STEP_TOPIC,
    EE_POSE_TOPIC,
    RANDOM_START_HEIGHT_M,
    random_start_position,
    record_demonstrations,
)


def _poses_and_labels(bag) -> tuple[np.ndarray, np.ndarray]:
    messages = list(read_messages(bag, [ACTION_STEP_TOPIC, EE_POSE_TOPIC]))
    poses = np.array(
        [
            [m.msg.pose.position.x, m.msg.pose.position.y, m.msg.pose.position.z]
            for m in messages
            if m.topic == EE_POSE_TOPIC
        ]
    )
    labels = np.array([m.msg.action for m in messages if m.topic == ACTION_STEP_TOPIC])
    return poses, labels


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_random_start_bags_begin_away_from_home_and_still_reach_the_part(tmp_path):
    seeds = [0, 1, 2]
    home_dir, random_dir = tmp_path / "home", tmp_path / "random"
    common = dict(tasks=["move_to_part"], episodes=len(seeds), seed_start=0, image_size_px=32, progress=False)
    home = record_demonstrations(home_dir, **common)
    randomized = record_demonstrations(random_dir, random_start=True, **common)
    # The expert succeeds from anywhere above the table: every episode is written.
    assert len(home.written) == len(randomized.written) == len(seeds)
    home_xyz = np.asarray(WorkcellConfig().home_ee_position_m)
    starts = []
    with Workcell(WorkcellConfig(image_width=32, image_height=32)) as cell:
        for seed, home_bag, random_bag in zip(
            seeds, sorted(home.written), sorted(randomized.written), strict=True
        ):
            home_poses, home_labels = _poses_and_labels(home_bag)
            poses, _ = _poses_and_labels(random_bag)
            # Home-started: the arm begins at home, and after the first step every step continues the
            # way from home (the shortcut a policy can learn without looking at the part).
            np.testing.assert_allclose(home_poses[0], home_xyz, atol=0.01)
            assert all(
                _cosine(step[:3], pose - home_xyz) > 0.95
                for step, pose in zip(home_labels[1:], home_poses[1:-1], strict=True)
            )
            # Random start: the arm begins at the seed's own start, well away from home...
            start = random_start_position(seed)
            np.testing.assert_allclose(poses[0], start, atol=0.01)
            assert np.linalg.norm(start - home_xyz) > 0.02
            assert RANDOM_START_HEIGHT_M[0] <= start[2] <= RANDOM_START_HEIGHT_M[1]
            starts.append(start)
            # ...on the same layout and task as the home-started episode, and ends above the same part.
            cell.reset(seed, "move_to_part")
            part_xy = cell.part_position(cell.task.part_id)[:2]
            assert np.linalg.norm(poses[-1][:2] - part_xy) < 0.025
            assert np.linalg.norm(home_poses[-1][:2] - part_xy) < 0.025
    # Each layout has its own start, and the same seed gives the same start again.
    assert min(np.linalg.norm(a - b) for i, a in enumerate(starts) for b in starts[i + 1 :]) > 0.01
    np.testing.assert_array_equal(random_start_position(1), random_start_position(1))


def _record_one_episode(out_dir, seed: int, **options):
    """One small move_to_part episode on layout ``seed``, without a progress bar."""
    return record_demonstrations(
        out_dir,
        tasks=["move_to_part"],
        episodes=1,
        seed_start=seed,
        image_size_px=32,
        progress=False,
        **options,
    )


def test_an_episode_done_before_its_first_step_leaves_no_bag(tmp_path):
    # Layout 41's random start is already within reach of the named part: an episode of zero steps has
    # nothing to learn from, and a bag with no camera frame or action would stop training.
    summary = _record_one_episode(tmp_path, seed=41, random_start=True)
    assert summary.written == [] and summary.failed_seeds == {"move_to_part": []}
    assert [p.name for p in summary.done_at_start] == ["move_to_part_seed000041"]
    assert not any(tmp_path.iterdir())
    assert "1 episode(s) done before the first step, not written" in summary.summary()


def test_an_episode_with_no_step_is_never_listed_as_written(tmp_path):
    # --max-steps 0 with --keep-failures: the episode fails with no step, and no bag is written, so
    # the summary must not claim one.
    summary = _record_one_episode(tmp_path, seed=0, max_steps=0, keep_failures=True)
    assert summary.written == [] and summary.done_at_start == []
    assert summary.failed_seeds == {"move_to_part": [0]}
    assert not any(tmp_path.iterdir())
