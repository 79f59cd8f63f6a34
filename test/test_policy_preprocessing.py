"""Preprocessing travels with the checkpoint: a model trained on random crops is centre-cropped at
inference by every entry point, an upstream checkpoint is not, and an explicit setting wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vla_ros.model.configuration_openvla import ConfigError, OpenVLAConfig
from vla_ros.model.tiny import make_tiny_checkpoint
from vla_ros.nodes.policy_node import center_crop_setting
from vla_ros.policy.runtime import PolicyConfig, VLAPolicy, recorded_center_crop

SIM_POLICY = Path(__file__).resolve().parents[1] / "models" / "sim_policy"


@pytest.fixture(scope="module")
def upstream_like(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", seed=1)


def test_a_plain_checkpoint_records_no_crop_and_gets_none(upstream_like):
    assert "center_crop" not in json.loads((upstream_like / "config.json").read_text())
    assert recorded_center_crop(upstream_like) is False
    assert VLAPolicy(PolicyConfig(upstream_like)).center_crop is False


def test_a_checkpoint_that_records_crops_is_cropped_unless_told_otherwise(upstream_like, tmp_path):
    config = json.loads((upstream_like / "config.json").read_text())
    cropped = tmp_path / "cropped"
    cropped.mkdir()
    for f in upstream_like.iterdir():
        (cropped / f.name).write_bytes(f.read_bytes())
    (cropped / "config.json").write_text(json.dumps({**config, "center_crop": True}))
    assert VLAPolicy(PolicyConfig(cropped)).center_crop is True
    assert VLAPolicy(PolicyConfig(cropped, center_crop=False)).center_crop is False
    assert OpenVLAConfig.from_json_file(cropped / "config.json").to_dict()["center_crop"] is True


def test_the_shipped_checkpoint_records_its_random_crop_training():
    assert recorded_center_crop(SIM_POLICY) is True


def test_center_crop_must_be_a_boolean_in_config_json():
    with pytest.raises(ConfigError):
        OpenVLAConfig(center_crop="yes")


def test_policy_node_center_crop_parameter_reads_auto_true_false():
    assert center_crop_setting("auto") is None
    assert center_crop_setting(True) is True and center_crop_setting("false") is False
    with pytest.raises(ValueError):
        center_crop_setting("sometimes")
