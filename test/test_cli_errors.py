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
        ("negative_vocab", "text_config", {"vocab_size": -5}),
    ]:
        shutil.copytree(model, d / name)
        config = json.loads((d / name / "config.json").read_text())
        config[field] = value
        (d / name / "config.json").write_text(json.dumps(config))
    shutil.copytree(model, d / "config_list")
    (d / "config_list" / "config.json").write_text("[1, 2]")
    shutil.copytree(model, d / "stats_garbage")
    (d / "stats_garbage" / "dataset_statistics.json").write_text("{oops")
    stats = json.loads((model / "dataset_statistics.json").read_text())
    for name, edit in [
        ("stats_nan", lambda a: a.update(q01=[float("nan"), *a["q01"][1:]])),
        ("stats_swapped", lambda a: a.update(q01=a["q99"], q99=a["q01"])),
        ("stats_short", lambda a: a.update(q01=a["q01"][:3])),
    ]:
        shutil.copytree(model, d / name)
        changed = json.loads(json.dumps(stats))
        for entry in changed.values():
            edit(entry["action"])
        (d / name / "dataset_statistics.json").write_text(json.dumps(changed))
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
    (
        "model",
        "ok.png",
        "\x01\x02\x1b\x7f",
        [],
        "instruction is empty .or only spaces and control characters",
    ),
    ("config_list", "ok.png", "go", [], "config.json holds a JSON list, not an object"),
    ("negative_vocab", "ok.png", "go", [], "text_config.vocab_size must be a whole number >= 1, got -5"),
    ("stats_garbage", "ok.png", "go", [], "stats_garbage/dataset_statistics.json is not valid JSON"),
    ("stats_nan", "ok.png", "go", [], "stats_nan: action statistics .* q01 and q99 must be finite"),
    ("stats_swapped", "ok.png", "go", [], r"q01 > q99 in dimension\(s\) \[0, 1, 2, 3, 4, 5\]"),
    ("stats_short", "ok.png", "go", [], r"q01 \(3,\), q99 \(7,\) and mask \(7,\) must be equal"),
    ("model", "ok.png", "go", ["--device", "potato"], "device 'potato' is not a torch device"),
    (
        "model",
        "ok.png",
        "go",
        ["--device", "cuda:7"],
        "device 'cuda:7': (torch sees no CUDA GPU|this machine has)",
    ),
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


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--port", "70000", "--port 70000 is not a TCP port"),
        ("--max-batch-size", "0", "--max-batch-size must be at least 1"),
        ("--num-replicas", "0", "--num-replicas must be at least 1"),
        ("--batch-wait-timeout-s", "-1", "--batch-wait-timeout-s must not be negative"),
    ],
)
def test_serve_refuses_bad_options_before_starting_ray(files, capsys, option, value, message):
    assert main(["serve", "--model", str(files / "model"), option, value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vla-ros serve: ") and message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--real-time-factor", "0"], "argument --real-time-factor: must be a number above 0, got 0"),
        (["--max-steps", "0"], "argument --max-steps: must be at least 1, got 0"),
        (["--episodes", "-1"], "argument --episodes: must be at least 1, got -1"),
    ],
)
def test_sim_refuses_numbers_out_of_range_as_usage_errors(capsys, argv, message):
    """A real-time factor of 0 used to wait for sim time for ever; 0 steps ran an empty episode."""
    with pytest.raises(SystemExit) as exited:
        main(["sim", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_sim_refuses_bad_inputs_before_the_simulator_starts(files, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    cases = [
        (["--operator-text", "  "], "vla-ros sim: --operator-text is empty"),
        (["--record", str(tmp_path / "a_file")], "is a file; bags are written into a directory"),
        (
            ["--policy", "model", "--model", str(tmp_path / "nowhere")],
            "nowhere is not a checkpoint directory",
        ),
    ]
    for argv, message in cases:
        assert main(["sim", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
