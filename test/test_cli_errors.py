"""Every input error of the command line is one line naming the file or field, exit status 2, no
traceback (``--debug`` shows it); the loader refuses broken checkpoints and configs the same way."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from vla_ros.cli import main
from vla_ros.image_codec import read_image_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from vla_ros.model.tiny import make_tiny_checkpoint

    d = tmp_path_factory.mktemp("inputs")
    model = make_tiny_checkpoint(d / "model", seed=0)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / "ok.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(d / "one_pixel.png")
    (d / "garbage.png").write_bytes(b"not a png at all")
    (d / "weights.pt").write_bytes(b"\x80\x04pickle")
    shard = sorted(model.glob("model-*.safetensors"))[1]
    broken = {
        "truncated": lambda p: p.write_bytes(p.read_bytes()[:4096]),
        "garbage": lambda p: p.write_bytes(b"garbage" * 100),
    }
    for name, damage in broken.items():
        shutil.copytree(model, d / name)
        damage(d / name / shard.name)
    for name, field, value in [
        ("no_bins", "n_action_bins", 0),
        ("unknown_backbone", "vision_backbone_id", "resnet-50"),
        ("size_as_text", "image_sizes", "224"),
    ]:
        shutil.copytree(model, d / name)
        config = json.loads((d / name / "config.json").read_text())
        config[field] = value
        (d / name / "config.json").write_text(json.dumps(config))
    return d


CASES = [
    ("model", "one_pixel.png", "go", [], "1x1 pixels; a camera image needs at least 14"),
    ("model", "ok.png", "   ", [], "instruction is empty"),
    ("model", "ok.png", "go " * 3000, [], r"tokens with the prompt; this model reads at most 512"),
    ("model", "garbage.png", "go", [], "garbage.png is not an image file"),
    ("model", "missing.png", "go", [], "missing.png is not an image file"),
    ("weights.pt", "ok.png", "go", [], "weights.pt is a file; a checkpoint is a directory"),
    ("missing_model", "ok.png", "go", [], "missing_model does not exist"),
    ("truncated", "ok.png", "go", [], r"model-00002-of-\d+.safetensors is not a readable safetensors file"),
    ("garbage", "ok.png", "go", [], r"model-00002-of-\d+.safetensors is not a readable safetensors file"),
    ("no_bins", "ok.png", "go", [], "n_action_bins must be a whole number >= 2, got 0"),
    ("unknown_backbone", "ok.png", "go", [], "vision_backbone_id 'resnet-50' is not a vision backbone"),
    ("size_as_text", "ok.png", "go", [], "image_sizes must be a list"),
    ("model", "ok.png", "go", ["--unnorm-key", "nope"], "unnorm_key 'nope' is not in this checkpoint"),
]


@pytest.mark.parametrize(("model", "image", "instruction", "extra", "message"), CASES)
def test_predict_input_errors_are_one_clear_line(files, capsys, model, image, instruction, extra, message):
    import re

    argv = [
        "predict",
        "--model",
        str(files / model),
        "--image",
        str(files / image),
        "--instruction",
        instruction,
    ]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("vla-ros predict: ") and re.search(message, err), err


def test_debug_shows_the_traceback_of_an_input_error(files):
    from vla_ros.model.loading import CheckpointError

    argv = ["--debug", "predict", "--model", str(files / "weights.pt"), "--image", str(files / "ok.png")]
    with pytest.raises(CheckpointError, match="is a file"):
        main([*argv, "--instruction", "go"])


def test_a_good_prediction_still_works(files, capsys):
    argv = [
        "predict",
        "--model",
        str(files / "model"),
        "--image",
        str(files / "ok.png"),
        "--instruction",
        "go",
    ]
    assert main(argv) == 0
    assert len(json.loads(capsys.readouterr().out)["token_ids"]) == 7


def test_a_16_bit_image_is_scaled_to_8_bits_not_clipped(tmp_path):
    grey = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    rgb = read_image_file(tmp_path / "grey16.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    np.testing.assert_array_equal(rgb[..., 0], (grey >> 8).astype(np.uint8))
    assert 0 < rgb.mean() < 255, "clipping would make almost every pixel white"


def test_an_enormous_image_is_refused_from_its_header(tmp_path):
    from vla_ros.image_codec import ImageTooLarge

    Image.new("RGB", (3000, 3000)).save(tmp_path / "big.png")
    with pytest.raises(ImageTooLarge, match="exceeds the limit of 4000000 pixels"):
        read_image_file(tmp_path / "big.png", max_pixels=2000 * 2000)


def test_serve_refuses_a_path_without_a_checkpoint_before_starting_ray(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vla-ros serve: {tmp_path / 'nowhere'} is not a checkpoint directory (no config.json)"
