"""rosbag2 read/write in both storage formats, and the errors bad bags give."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from vla_ros.data.bag import (
    ACTION_STEP_TYPE,
    IMAGE_TYPE,
    BagReader,
    BagWriter,
    CorruptBagError,
    EmptyBagError,
    MissingTopicsError,
    TopicRequirement,
    get_vla_typestore,
    stamp_to_ns,
)
from vla_ros.image_codec import image_to_rgb

STORAGES = ("mcap", "sqlite3")


def _write_everything(path: Path, storage: str) -> None:
    with BagWriter(path, storage=storage) as bag:
        for k in range(4):
            t = 10_000_000_000 + k * 200_000_000
            bag.write_image("/cam", t, np.full((4, 5, 3), k, np.uint8))
            bag.write_action_step(
                "/act", t + 1, np.arange(7) * k, image_stamp_ns=t, token_ids=[k, k + 1], step=k
            )
            bag.write_pose("/ee", t, (0.1 * k, 0.0, 0.3), (1.0, 0.0, 0.0, 0.0))
            bag.write_twist("/twist", t, (0.01 * k, 0.0, 0.0), (0.0, 0.0, 0.1))
        bag.write_instruction(
            "/instruction", 9_000_000_000, "pick up the red gear", action="pick", object_id="gear_1"
        )
        bag.write_string("/operator", 9_000_000_000, "grab the red one")
        bag.write_gripper("/gripper", 10_100_000_000, 0.0)
        bag.write_scene(
            "/scene",
            9_500_000_000,
            objects=[{"id": "gear_1", "name": "red gear", "color": "red", "position": (0.5, 0.1, 0.02)}],
            locations=[
                {"id": "bin_a", "role": "reject", "accepts": ["gear"], "attributes": {"size": "large"}}
            ],
            holding="",
        )


@pytest.mark.parametrize("storage", STORAGES)
def test_written_bag_reads_back_with_topics_counts_and_types(tmp_path, storage):
    path = tmp_path / "bag"
    _write_everything(path, storage)
    with BagReader(path) as reader:
        topics = reader.topics
        assert {name: (info.msgtype, info.count) for name, info in topics.items()} == {
            "/cam": (IMAGE_TYPE, 4),
            "/act": (ACTION_STEP_TYPE, 4),
            "/ee": ("geometry_msgs/msg/PoseStamped", 4),
            "/twist": ("geometry_msgs/msg/TwistStamped", 4),
            "/instruction": ("vla_ros/msg/Instruction", 1),
            "/operator": ("std_msgs/msg/String", 1),
            "/gripper": ("vla_ros/msg/GripperCommand", 1),
            "/scene": ("vla_ros/msg/Scene", 1),
        }
        assert reader.message_count == 20
        messages = list(reader.messages())
    times = [m.timestamp_ns for m in messages]
    assert times == sorted(times)
    steps = [m.msg for m in messages if m.topic == "/act"]
    np.testing.assert_array_equal(steps[2].action, np.arange(7) * 2.0)
    assert list(steps[3].token_ids) == [3, 4]
    assert stamp_to_ns(steps[1].image_stamp) == 10_200_000_000
    frames = [m.msg for m in messages if m.topic == "/cam"]
    rgb = image_to_rgb(frames[3].encoding, frames[3].height, frames[3].width, frames[3].step, frames[3].data)
    np.testing.assert_array_equal(rgb, np.full((4, 5, 3), 3, np.uint8))
    (scene,) = [m.msg for m in messages if m.topic == "/scene"]
    assert scene.objects[0].color == "red"
    assert scene.locations[0].attributes[0].value == "large"
    (instruction,) = [m.msg for m in messages if m.topic == "/instruction"]
    assert (instruction.text, instruction.object_id) == ("pick up the red gear", "gear_1")


def test_storage_file_can_be_read_directly(tmp_path):
    path = tmp_path / "bag"
    _write_everything(path, "mcap")
    (storage_file,) = path.glob("*.mcap")
    with BagReader(storage_file) as reader:
        assert reader.topics["/act"].count == 4


def test_our_types_are_registered_in_the_typestore():
    types = get_vla_typestore().types
    for name in ("ActionStep", "GripperCommand", "Instruction", "Clarification", "Scene", "SceneObject"):
        assert f"vla_ros/msg/{name}" in types


def test_missing_topics_error_names_what_is_missing_and_what_exists(tmp_path):
    path = tmp_path / "bag"
    _write_everything(path, "mcap")
    with BagReader(path) as reader, pytest.raises(MissingTopicsError) as err:
        reader.require(
            [
                TopicRequirement("/cam", "camera", (IMAGE_TYPE,)),
                TopicRequirement("/wrist_cam", "camera", (IMAGE_TYPE,), "--camera-topic"),
                TopicRequirement("/operator", "action", (ACTION_STEP_TYPE,), "--action-topic"),
            ]
        )
    text = str(err.value)
    assert "camera topic /wrist_cam is missing (set --camera-topic)" in text
    assert "/operator has type std_msgs/msg/String" in text
    assert "/act (vla_ros/msg/ActionStep, 4 msgs)" in text
    assert "/cam is missing" not in text


@pytest.mark.parametrize("storage", STORAGES)
def test_empty_bag_is_reported(tmp_path, storage):
    path = tmp_path / "empty"
    with BagWriter(path, storage=storage):
        pass
    with pytest.raises(EmptyBagError, match="contains no messages"):
        BagReader(path).open()


@pytest.mark.parametrize(("storage", "suffix"), [("mcap", ".mcap"), ("sqlite3", ".db3")])
@pytest.mark.parametrize("keep_fraction", [0.0, 0.5, 0.75])
def test_truncated_bag_gives_a_clear_error(tmp_path, storage, suffix, keep_fraction):
    path = tmp_path / "bag"
    _write_everything(path, storage)
    (storage_file,) = path.glob(f"*{suffix}")
    size = os.path.getsize(storage_file)
    with open(storage_file, "r+b") as fh:
        fh.truncate(int(size * keep_fraction))
    with pytest.raises(CorruptBagError, match=r"truncated, damaged"), BagReader(path) as reader:
        list(reader.messages())


def test_missing_path_and_interrupted_recording_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BagReader(tmp_path / "nope").open()
    path = tmp_path / "bag"
    _write_everything(path, "mcap")
    interrupted = tmp_path / "interrupted"
    shutil.copytree(path, interrupted)
    (interrupted / "metadata.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="ros2 bag reindex"):
        BagReader(interrupted).open()


def test_writer_refuses_to_overwrite_and_to_mix_types_on_a_topic(tmp_path):
    path = tmp_path / "bag"
    _write_everything(path, "mcap")
    with pytest.raises(FileExistsError):
        BagWriter(path)
    with BagWriter(tmp_path / "other") as bag:
        bag.write_string("/x", 1, "hello")
        with pytest.raises(Exception, match="already carries std_msgs/msg/String"):
            bag.write_gripper("/x", 2, 1.0)


def test_bag_with_fewer_messages_than_its_metadata_lists_is_reported(tmp_path):
    path = tmp_path / "bag"
    _write_everything(path, "sqlite3")
    meta = path / "metadata.yaml"
    text = meta.read_text()
    assert "message_count: 4" in text
    meta.write_text(text.replace("message_count: 4", "message_count: 6", 1))
    with pytest.raises(CorruptBagError, match=r"ended early.*: 4 of 6"), BagReader(path) as reader:
        list(reader.messages())


def test_scene_keys_without_a_message_field_are_recorded_as_attributes(tmp_path):
    """Bags record a scene the way the nodes publish it (vla_ros.scene_fields serves both)."""
    path = tmp_path / "bag"
    bolt = {"id": "bolt_1", "category": "bolt", "thread": "M6", "length_mm": None, "position": (0.4, 0.1)}
    with BagWriter(path) as bag:
        bag.write_scene("/scene", 1_000_000_000, objects=[bolt], locations=[{"id": "bin_a", "slot": 3}])
    with BagReader(path) as reader:
        (scene,) = [m.msg for m in reader.messages()]
    (obj,) = scene.objects
    assert (obj.id, obj.category, obj.name, obj.length_mm) == ("bolt_1", "bolt", "", 0.0)
    assert (obj.position.x, obj.position.y, obj.position.z) == pytest.approx((0.4, 0.1, 0.0))
    assert [(kv.key, kv.value) for kv in obj.attributes] == [("thread", "M6")]
    assert [(kv.key, kv.value) for kv in scene.locations[0].attributes] == [("slot", "3")]
