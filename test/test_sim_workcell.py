"""The PyBullet workcell: seeded resets, the FORMAT.md scene, end-effector control, cameras, success."""

from __future__ import annotations

import numpy as np
import pybullet
import pytest

from vla_ros.action import Action
from vla_ros.sim import TASK_NAMES, Workcell, WorkcellConfig
from vla_ros.sim.layout import PART_COLORS_RGBA

OBJECT_FIELDS = {"id", "name", "kind", "category", "color", "size", "position"}
LOCATION_FIELDS = {"id", "name", "category", "position"}
LOCATION_ROLES = {"reject", "storage", "inspection", "output"}
LOCATION_CATEGORIES = {"bin", "tray", "rack", "fixture", "conveyor", "station"}


@pytest.fixture(scope="module")
def cell():
    workcell = Workcell(WorkcellConfig(image_width=96, image_height=80, wrist_camera=True))
    yield workcell
    workcell.close()


def _snapshot(cell: Workcell) -> tuple:
    joints = cell.joint_states()
    return (
        cell.instruction,
        repr(cell.scene()),
        tuple(np.round(cell.ee_pose()[0], 6)),
        tuple(np.round(joints.positions, 6)),
    )


def test_seeded_reset_is_deterministic_whatever_happened_before(cell):
    cell.reset(11, "pick_place")
    first = _snapshot(cell)
    cell.apply_action(np.array([0.03, -0.02, -0.04, 0.0, 0.0, 0.0, 0.0]))
    cell.reset(12, "push")
    cell.reset(11, "pick_place")
    assert _snapshot(cell) == first
    cell.reset(13, "pick_place")
    assert _snapshot(cell) != first


def test_reset_returns_the_task_instruction_and_rejects_unknown_tasks(cell):
    for name in TASK_NAMES:
        instruction = cell.reset(5, name)
        assert instruction == cell.task.instruction and cell.task.name == name
        assert cell.episode_steps == 0 and cell.seed == 5
    with pytest.raises(ValueError, match="choose one of"):
        cell.reset(5, "juggle")


def test_scene_has_the_disambiguation_format_fields(cell):
    cell.reset(21, "pick_place")
    scene = cell.scene()
    assert set(scene) == {"objects", "locations", "holding"}
    assert scene["holding"] is None
    assert 2 <= len(scene["objects"]) <= 4
    for obj in scene["objects"]:
        assert set(obj) >= OBJECT_FIELDS
        assert obj["kind"] in {"part", "tool"}
        assert obj["size"] in {"small", "medium", "large"}
        assert obj["name"] == f"{obj['color']} {obj['category']}"
        assert len(obj["position"]) == 3 and all(isinstance(v, float) for v in obj["position"])
        assert 0.0 < obj["position"][2] < 0.05  # resting on the table
    for location in scene["locations"]:
        assert set(location) >= LOCATION_FIELDS
        assert location["category"] in LOCATION_CATEGORIES
        assert location.get("role", "reject") in LOCATION_ROLES
        assert isinstance(location.get("accepts", []), list)
    ids = [o["id"] for o in scene["objects"]] + [loc["id"] for loc in scene["locations"]]
    assert len(set(ids)) == len(ids)
    # The instruction names things the scene lists.
    names = {o["name"] for o in scene["objects"]} | {loc["name"] for loc in scene["locations"]}
    assert sum(name in cell.instruction for name in names) == 2


def test_apply_action_moves_the_end_effector_by_about_the_delta(cell):
    cell.reset(3, "move_to")
    for delta in ([0.04, 0.0, 0.0], [0.0, -0.04, 0.0], [0.0, 0.0, -0.05], [-0.02, 0.03, 0.02]):
        before, _ = cell.ee_pose()
        cell.apply_action(np.array([*delta, 0.0, 0.0, 0.0, 1.0]))
        moved = cell.ee_pose()[0] - before
        np.testing.assert_allclose(moved, delta, atol=0.004)
    assert cell.episode_steps == 4


def test_gripper_stays_pointing_down_without_rotation_commands(cell):
    cell.reset(3, "move_to")
    for _ in range(3):
        cell.apply_action(Action(vector=[0.03, 0.03, -0.03, 0.0, 0.0, 0.0, 1.0]))
    _, quat = cell.ee_pose()
    z_axis = np.asarray(pybullet.getMatrixFromQuaternion(quat)).reshape(3, 3)[:, 2]
    assert z_axis[2] < -0.99


def test_rotation_deltas_turn_the_hand_about_the_vertical(cell):
    cell.reset(3, "move_to")
    _, before = cell.ee_pose()
    cell.apply_action(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 1.0]))
    _, after = cell.ee_pose()
    angle = 2 * np.arccos(min(1.0, abs(float(np.dot(before, after)))))
    assert angle == pytest.approx(0.2, abs=0.03)


def test_commands_stay_inside_the_workspace(cell):
    cell.reset(3, "move_to")
    for _ in range(12):
        cell.apply_action(np.array([0.0, 0.0, -0.05, 0.0, 0.0, 0.0, 1.0]))
    target, _ = cell.ee_target_pose()
    assert target[2] == pytest.approx(cell.config.workspace_min_m[2])
    assert cell.ee_pose()[0][2] > 0.0


def test_non_finite_or_misshapen_actions_are_refused(cell):
    cell.reset(3, "move_to")
    with pytest.raises(ValueError, match="non-finite"):
        cell.apply_action(np.array([np.nan, 0, 0, 0, 0, 0, 1.0]))
    with pytest.raises(ValueError, match="7 values"):
        cell.apply_action(np.zeros(6))


def test_sim_time_advances_by_the_control_period_per_action(cell):
    cell.reset(3, "move_to")
    start = cell.sim_time_s
    cell.apply_action(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]))
    assert cell.sim_time_s - start == pytest.approx(cell.control_period_s, abs=1e-9)
    cell.apply_twist(np.array([0.1, 0.0, 0.0, 0.0, 0.0, 0.0]), 0.05)
    assert cell.sim_time_s - start == pytest.approx(cell.control_period_s + 0.05, abs=1e-9)
    cell.reset(4, "move_to")
    assert cell.sim_time_s > start  # the clock never runs backwards


def test_twist_is_a_velocity_held_for_the_duration(cell):
    cell.reset(3, "move_to")
    before, _ = cell.ee_pose()
    cell.apply_twist(np.array([0.0, 0.2, 0.0, 0.0, 0.0, 0.0]), 0.25)
    cell.hold(0.05)
    np.testing.assert_allclose(cell.ee_pose()[0] - before, [0.0, 0.05, 0.0], atol=0.004)


def test_joint_states_name_the_arm_and_finger_joints(cell):
    cell.reset(3, "move_to")
    joints = cell.joint_states()
    assert joints.names == [f"panda_joint{i}" for i in range(1, 8)] + [
        "panda_finger_joint1",
        "panda_finger_joint2",
    ]
    assert joints.positions.shape == joints.velocities.shape == (9,)
    cell.set_gripper(0.0)
    cell.hold(0.4)
    assert cell.gripper_opening() < 0.05
    assert cell.joint_states().positions[7] < 0.002


def test_images_have_the_configured_shape_and_change_when_the_arm_moves(cell):
    cell.reset(3, "move_to")
    image = cell.render()
    assert image.shape == (80, 96, 3) and image.dtype == np.uint8
    wrist = cell.render("wrist")
    assert wrist.shape == (80, 96, 3) and wrist.dtype == np.uint8
    for _ in range(3):
        cell.apply_action(np.array([0.04, 0.04, -0.04, 0.0, 0.0, 0.0, 1.0]))
    moved = cell.render()
    changed = np.any(moved != image, axis=2).mean()
    assert changed > 0.01
    with pytest.raises(ValueError, match="no camera"):
        cell.render("ceiling")


def test_part_labels_mark_each_part_where_the_image_shows_its_colour(cell):
    cell.reset(5, "pick_place")
    image, labels = cell.render(), cell.render_part_labels()
    assert labels.shape == image.shape[:2] and labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, *range(1, len(cell.layout.parts) + 1)}
    palette = {name: np.asarray(rgba[:3]) * 255 for name, rgba in PART_COLORS_RGBA.items()}
    for index, part in enumerate(cell.layout.parts, start=1):
        # Shading darkens the pixels but keeps their hue: the part's own colour is the nearest
        # palette entry once brightness is divided out.
        pixels = image[labels == index].astype(float)
        mean = pixels.mean(axis=0) / max(pixels.mean(), 1.0)
        nearest = min(palette, key=lambda name: np.linalg.norm(mean - palette[name] / palette[name].mean()))
        assert nearest == part.color, (part.name, mean)

    first = cell.layout.parts[0]
    cols_before = np.nonzero(labels == 1)[1]
    moved_to = cell.part_position(first.id) + np.array([0.0, 0.12, 0.0])  # to the robot's left
    cell.place_part(first.id, moved_to)
    cols_after = np.nonzero(cell.render_part_labels() == 1)[1]
    # The scene camera faces the robot: the robot's left (+y) is the image's right.
    assert cols_after.mean() > cols_before.mean() + 3
    with pytest.raises(ValueError, match="no camera"):
        cell.render_part_labels("ceiling")


def test_success_follows_constructed_states(cell):
    cell.reset(8, "pick_place")
    task = cell.task
    assert not cell.success()
    location = cell.layout.location(task.location_id)
    part = cell.layout.part(task.part_id)
    cell.place_part(part.id, [location.xy_m[0], location.xy_m[1], part.height_m / 2 + 0.002])
    cell.hold(0.1)
    assert cell.success()

    cell.reset(8, "move_to")
    assert not cell.success()
    location = cell.layout.location(cell.task.location_id)
    cell.place_ee([location.xy_m[0], location.xy_m[1], 0.12])
    cell.hold(0.1)
    assert cell.success()

    cell.reset(8, "push")
    task = cell.task
    assert not cell.success()
    direction = {"left": (0, 1), "right": (0, -1), "forward": (1, 0), "backward": (-1, 0)}[task.direction]
    start = task.start_part_positions_m[task.part_id]
    cell.place_part(task.part_id, start + 0.1 * np.array([*direction, 0.0]))
    cell.hold(0.1)
    assert cell.success()


def test_a_closed_gripper_around_a_part_reports_holding_it(cell):
    cell.reset(8, "pick_place")
    part = cell.layout.part(cell.task.part_id)
    position = cell.part_position(part.id)
    cell.place_ee([position[0], position[1], max(part.height_m / 2, 0.014)])
    cell.hold(0.1)
    assert cell.holding() is None
    cell.set_gripper(0.0)
    cell.hold(0.4)
    assert cell.holding() == part.id
    assert cell.scene()["holding"] == part.id
    for _ in range(3):
        cell.apply_action(np.array([0.0, 0.0, 0.04, 0.0, 0.0, 0.0, 0.0]))
    assert cell.part_position(part.id)[2] > 0.1  # lifted by friction, no attachment
