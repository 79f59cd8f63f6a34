"""Episodes from bags: synchronisation, action sources, splitting, cleaning and statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_ros.data.bag import BagWriter, MissingTopicsError
from vla_ros.data.dataset import (
    ACTION_SOURCES,
    CleaningConfig,
    Episode,
    SyncConfig,
    TopicConfig,
    clean_episodes,
    load_episodes,
    read_bag_episodes,
    rotation_delta,
    write_dataset_statistics,
)
from vla_ros.data.synthetic import step_image, write_demo_bag


def _demo_actions(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    motion = rng.uniform(-0.01, 0.01, size=(n, 6))
    gripper = (rng.uniform(size=(n, 1)) > 0.5).astype(float)
    return np.concatenate([motion, gripper], axis=1)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("source", ACTION_SOURCES)
def test_every_action_source_recovers_the_demonstrated_actions_and_frames(tmp_path, storage, source):
    actions = _demo_actions(6)
    bag = write_demo_bag(tmp_path / "demo", actions, storage=storage, instruction="put the gear in the bin")
    (episode,) = read_bag_episodes(bag, TopicConfig(action_source=source), SyncConfig(control_rate_hz=5.0))
    assert len(episode) == 6
    np.testing.assert_allclose(episode.actions, actions, atol=1e-12)
    for k, image in enumerate(episode.images):
        np.testing.assert_array_equal(image, step_image(k))
    assert episode.instruction == "put the gear in the bin"
    assert episode.metadata["measured_rate_hz"] == pytest.approx(5.0)


def test_recorded_token_ids_travel_with_action_steps(tmp_path):
    tokens = [[31000 + k] * 7 for k in range(3)]
    bag = write_demo_bag(tmp_path / "demo", _demo_actions(3), token_ids=tokens)
    (episode,) = read_bag_episodes(bag)
    assert episode.token_ids == [tuple(t) for t in tokens]


def test_each_sampled_step_takes_the_nearest_previous_frame(tmp_path):
    # Camera at 10 Hz but 10 ms early; teleop twist at 5 Hz. The tick at 200 ms must use the frame
    # from 190 ms (newest not after the tick), not the closer-in-time one from 290 ms... nor 90 ms.
    t0 = 1_000_000_000
    with BagWriter(tmp_path / "bag") as bag:
        bag.write_string("/instruction", t0 - 1, "push the box left")
        for k in range(10):
            bag.write_image("/cam", t0 + k * 100_000_000 - 10_000_000, np.full((2, 2, 3), k, np.uint8))
        for k in range(5):
            bag.write_twist("/twist", t0 + k * 200_000_000, (0.05, 0.0, 0.0), (0.0, 0.0, 0.0))
    topics = TopicConfig(
        camera="/cam", instruction="/instruction", action_source="twist", twist="/twist", gripper=None
    )
    (episode,) = read_bag_episodes(tmp_path / "bag", topics, SyncConfig(control_rate_hz=5.0))
    assert [int(img[0, 0, 0]) for img in episode.images] == [0, 2, 4, 6, 8]
    np.testing.assert_allclose(episode.actions[:, 0], 0.01)  # 0.05 m/s * 0.2 s
    np.testing.assert_allclose(episode.actions[:, 6], 1.0)  # no gripper topic: stays open


def test_action_step_uses_the_frame_it_acted_on(tmp_path):
    t0 = 1_000_000_000
    with BagWriter(tmp_path / "bag") as bag:
        for k in range(4):
            bag.write_image("/camera/image_raw", t0 + k * 100_000_000, np.full((2, 2, 3), k, np.uint8))
        # Inference was slow: the step at 350 ms acted on the frame stamped 100 ms.
        bag.write_action_step(
            "/vla/action_step", t0 + 350_000_000, np.ones(7), image_stamp_ns=t0 + 100_000_000
        )
        bag.write_action_step("/vla/action_step", t0 + 360_000_000, np.ones(7), image_stamp_ns=0)
    (episode,) = read_bag_episodes(
        tmp_path / "bag", TopicConfig(instruction=None), SyncConfig(fixed_instruction="x")
    )
    assert [int(img[0, 0, 0]) for img in episode.images] == [1, 3]


def test_action_step_logged_before_its_frame_waits_for_that_frame(tmp_path):
    # Stamped on receipt, a step can reach the bag before the frame it answered (different QoS). The
    # first step must not be lost for "no camera frame yet", and each step must get its own frame.
    t0 = 1_000_000_000
    ms = 1_000_000
    with BagWriter(tmp_path / "bag") as bag:
        for k in range(3):
            captured = t0 + k * 100 * ms
            bag.write_action_step(
                "/vla/action_step", captured + 5 * ms, np.full(7, k), image_stamp_ns=captured
            )
            bag.write_image(
                "/camera/image_raw",
                captured + 8 * ms,
                np.full((2, 2, 3), k, np.uint8),
                header_stamp_ns=captured,
            )
        # A step naming a frame that never comes takes the newest frame at its arrival, as before.
        bag.write_action_step("/vla/action_step", t0 + 400 * ms, np.full(7, 3), image_stamp_ns=t0 + 390 * ms)
        bag.write_image("/camera/image_raw", t0 + 410 * ms, np.full((2, 2, 3), 9, np.uint8))
    (episode,) = read_bag_episodes(
        tmp_path / "bag", TopicConfig(instruction=None), SyncConfig(fixed_instruction="x")
    )
    assert [int(img[0, 0, 0]) for img in episode.images] == [0, 1, 2, 2]
    np.testing.assert_allclose(episode.actions[:, 0], [0, 1, 2, 3])
    assert episode.metadata["start_ns"] == t0 + 5 * ms


def test_episodes_split_on_instruction_change_and_on_time_gaps(tmp_path):
    actions = _demo_actions(6)
    instructions = ["pick the gear"] * 3 + ["place it in the bin"] * 3
    bag = write_demo_bag(tmp_path / "a", actions, instruction=instructions)
    (whole,) = read_bag_episodes(bag)
    assert whole.step_instructions == instructions
    split = read_bag_episodes(bag, sync=SyncConfig(split_on_instruction_change=True))
    assert [(e.instruction, len(e)) for e in split] == [("pick the gear", 3), ("place it in the bin", 3)]

    times = [10**12 + k * 200_000_000 for k in range(3)] + [
        10**12 + 5 * 10**9 + k * 200_000_000 for k in range(3)
    ]
    actions[:, 6] = 1.0  # gripper steady: the zero-motion ticks in the gap are all no-ops
    gap_bag = write_demo_bag(tmp_path / "b", actions, step_times_ns=times)
    keep_motion = CleaningConfig(min_steps=1, outlier_iqr_k=None)  # drops only the no-op ticks in the gap
    for source, sizes in [("action_step", [3, 3]), ("twist", [3, 3]), ("ee_pose", [2, 3])]:
        # ee_pose: the last pose before the gap has no successor in its segment, so one step is lost.
        parts, _ = load_episodes(
            [gap_bag], TopicConfig(action_source=source), SyncConfig(split_gap_s=1.0), keep_motion
        )
        assert [len(e) for e in parts] == sizes, source
        expected = actions if source != "ee_pose" else np.delete(actions, 2, axis=0)
        np.testing.assert_allclose(np.concatenate([e.actions for e in parts]), expected, atol=1e-12)
        assert len({e.episode_id for e in parts}) == 2


def test_gripper_convention_is_unified_to_one_means_open(tmp_path):
    actions = _demo_actions(4)
    recorded = actions.copy()
    recorded[:, 6] = 1.0 - actions[:, 6]  # this recorder uses 1 = closed
    bag = write_demo_bag(tmp_path / "demo", recorded)
    (episode,) = read_bag_episodes(bag, sync=SyncConfig(gripper_open_value=0.0, gripper_closed_value=1.0))
    np.testing.assert_array_equal(episode.actions[:, 6], actions[:, 6])


def test_rotation_delta_is_the_rotation_vector_between_orientations():
    half = np.sqrt(0.5)
    # 90 degrees about z.
    np.testing.assert_allclose(
        rotation_delta((0, 0, 0, 1), (0, 0, half, half)), [0, 0, np.pi / 2], atol=1e-12
    )
    np.testing.assert_allclose(
        rotation_delta((0, 0, half, half), (0, 0, 0, 1)), [0, 0, -np.pi / 2], atol=1e-12
    )
    np.testing.assert_allclose(rotation_delta((1, 0, 0, 0), (1, 0, 0, 0)), [0, 0, 0], atol=1e-12)


def test_missing_action_topic_names_the_topic_and_the_option(tmp_path):
    bag = write_demo_bag(tmp_path / "demo", _demo_actions(3), write=("camera", "instruction", "twist"))
    with pytest.raises(MissingTopicsError) as err:
        read_bag_episodes(bag)
    assert "action (ActionStep) topic /vla/action_step is missing (set --action-topic)" in str(err.value)
    assert "/servo_node/delta_twist_cmds (geometry_msgs/msg/TwistStamped, 3 msgs)" in str(err.value)


def _crafted_bags(tmp_path):
    """Four bags: clean; with 3 inserted no-op steps; with one wild step; with a single step."""
    clean = _demo_actions(10, seed=1)
    with_noops = _demo_actions(10, seed=2)
    noop_rows = [3, 4, 8]
    for row in noop_rows:
        with_noops[row, :6] = 0.0
        with_noops[row, 6] = with_noops[row - 1, 6]
    wild = _demo_actions(10, seed=3)
    wild[5, 0] = 0.5  # 50 cm in one 0.2 s step
    short = _demo_actions(1, seed=4)
    bags = [
        write_demo_bag(tmp_path / "clean", clean),
        write_demo_bag(tmp_path / "noops", with_noops, storage="sqlite3"),
        write_demo_bag(tmp_path / "wild", wild),
        write_demo_bag(tmp_path / "short", short),
    ]
    return bags, clean, with_noops, noop_rows


def test_cleaning_removes_exactly_the_noop_steps_the_outlier_and_the_short_episode(tmp_path):
    bags, clean, with_noops, noop_rows = _crafted_bags(tmp_path)
    episodes, report = load_episodes(bags)
    assert [e.episode_id for e in episodes] == ["clean#0", "noops#0"]
    np.testing.assert_allclose(episodes[0].actions, clean)
    np.testing.assert_allclose(episodes[1].actions, np.delete(with_noops, noop_rows, axis=0))
    np.testing.assert_array_equal(episodes[1].images[3], step_image(5))  # frames follow their steps
    assert report.noop_steps_dropped == {"noops#0": 3}
    dropped = {e.episode_id: e.reason for e in report.dropped_episodes}
    assert set(dropped) == {"wild#0", "short#0"}
    assert "outlier: max translation step 0.5" in dropped["wild#0"]
    assert "too short" in dropped["short#0"]
    assert (report.episodes_in, report.episodes_out) == (4, 2)
    assert (report.steps_in, report.steps_out) == (31, 17)
    assert "3 no-op step(s) dropped" in report.summary()


def test_outliers_can_be_reported_without_dropping(tmp_path):
    bags, *_ = _crafted_bags(tmp_path)
    episodes, report = load_episodes(bags[:3], cleaning=CleaningConfig(outlier_policy="report"))
    assert [e.episode_id for e in episodes] == ["clean#0", "noops#0", "wild#0"]
    assert [e.episode_id for e in report.flagged_episodes] == ["wild#0"]


def test_nonfinite_steps_are_dropped_and_counted():
    actions = _demo_actions(4)
    actions[2, 1] = np.nan
    episode = Episode([np.zeros((2, 2, 3), np.uint8)] * 4, actions, "x", episode_id="e")
    (kept,), report = clean_episodes([episode], CleaningConfig(outlier_iqr_k=None))
    assert len(kept) == 3
    assert report.nonfinite_steps_dropped == {"e": 1}


def test_dataset_statistics_file_has_the_official_layout_and_hand_checked_values(tmp_path):
    def episode(dx_values):
        acts = np.zeros((len(dx_values), 7))
        acts[:, 0] = dx_values
        acts[:, 6] = 1.0
        return Episode([np.zeros((2, 2, 3), np.uint8)] * len(dx_values), acts, "x")

    path = write_dataset_statistics(tmp_path, "my_cell", [episode([1.0, 2.0]), episode([3.0, 4.0])])
    assert path.name == "dataset_statistics.json"
    stats = json.loads(path.read_text())
    assert list(stats) == ["my_cell"]
    entry = stats["my_cell"]
    assert set(entry) == {"action", "proprio", "num_transitions", "num_trajectories"}
    assert set(entry["action"]) == {"mean", "std", "max", "min", "q01", "q99", "mask"}
    assert set(entry["proprio"]) == {"mean", "std", "max", "min", "q01", "q99"}
    assert entry["action"]["mask"] == [True] * 6 + [False]
    assert entry["action"]["mean"][0] == pytest.approx(2.5)
    assert entry["action"]["std"][0] == pytest.approx(np.sqrt(1.25))
    assert (entry["action"]["min"][0], entry["action"]["max"][0]) == (1.0, 4.0)
    assert entry["action"]["q01"][0] == pytest.approx(1.03)  # linear interpolation at 0.01 * 3
    assert entry["action"]["q99"][0] == pytest.approx(3.97)
    assert entry["action"]["mean"][6] == 1.0
    assert entry["proprio"]["mean"] == [0.0] * 7
    assert (entry["num_transitions"], entry["num_trajectories"]) == (4, 2)


def test_compressed_camera_frames_are_decoded_through_the_codec(tmp_path):
    t0 = 1_000_000_000
    frames = [step_image(k, 6, 6) for k in range(3)]
    with BagWriter(tmp_path / "bag", storage="sqlite3") as bag:
        bag.write_string("/vla/instruction", t0 - 1, "pick")
        for k, frame in enumerate(frames):
            t = t0 + k * 200_000_000
            bag.write_compressed_image("/camera/image_raw/compressed", t, frame, codec="png")
            bag.write_action_step("/vla/action_step", t + 1, np.full(7, 0.001 * (k + 1)), image_stamp_ns=t)
    (episode,) = read_bag_episodes(tmp_path / "bag", TopicConfig(camera="/camera/image_raw/compressed"))
    for image, frame in zip(episode.images, frames, strict=True):
        np.testing.assert_array_equal(image, frame)
