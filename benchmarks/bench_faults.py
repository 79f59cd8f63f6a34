"""Bad inputs and faults against the command line, the model loader and the running nodes; one table.

Every case is one bad input (or fault) and the outcome class it got:

- ``clear error``: a user error refused with one line naming the file, field or option and exit status 2,
  no traceback (the command line), or a :class:`~vla_ros.errors.UserInputError` whose message names
  the input (the loader);
- ``survived``: a node kept running, kept its limits and reported the input on ``/diagnostics`` (or a
  valid but unusual input, such as a 16-bit PNG, was used as documented);
- ``crash``: a process died (a signal, or a node's exit);
- ``hang``: no answer within the case's time limit (the process is killed);
- ``silent acceptance``: a bad input was used as if it were good (exit status 0, a policy step from
  it, an output past a limit, a refusal that never reached ``/diagnostics``);
- ``traceback``: a user error answered with a Python traceback (or an exception that is not a
  UserInputError, from the loader);
- ``unclear error``: refused without a traceback but not as above (another exit status, several lines,
  or a message that does not say which input).

Command-line and loader cases run in a child forked from this process after the heavy modules are
imported (no torch op runs in the parent before it forks), so each costs its own work, not 10 s of
imports; ``--fresh-processes`` runs every command-line case as its own ``python -m vla_ros.cli``
process instead (the real thing, several times slower). Node cases run the installed node executables
(``install/lib/vla_ros/*``) as processes and talk to them over DDS from this one (a private
``ROS_DOMAIN_ID``): the controller (``output_mode`` sim), the policy node with a tiny random OpenVLA,
and the disambiguation node. The 1 kHz command flood is ``bench_controller_flood.py``'s measurement,
run once here on a domain of its own.

Below the table: counts per class, the controller's watchdog latency (last command's stamp -> first
zero output after a command publisher is killed; ``command_timeout_s`` 0.5 s) and the largest gap
between its outputs (in output periods, on the output stamps) during the case run and during the flood.

    make build
    bash scripts/with_env.sh python benchmarks/bench_faults.py [--quick] [--json OUT.json]

``--quick`` runs the subset test/test_faults.py runs; the exit status is 1 when any case is a crash, a
hang, a silent acceptance, a traceback or an unclear error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

OUTCOMES = (
    "clear error",
    "survived",
    "crash",
    "hang",
    "silent acceptance",
    "traceback",
    "unclear error",
)
BAD_OUTCOMES = ("crash", "hang", "silent acceptance", "traceback", "unclear error")
HERE = Path(__file__).resolve().parent
CLI_TIMEOUT_S = 60.0


@dataclass
class Result:
    outcome: str
    detail: str = ""


@dataclass
class Case:
    area: str  # cli | loader | node
    name: str
    run: Callable[[], Result]
    quick: bool = False  # part of --quick (test/test_faults.py)


@dataclass
class Row:
    area: str
    name: str
    outcome: str
    detail: str
    seconds: float
    started: float = 0.0  # wall clock (time.time()) when the case began


@dataclass
class Measurements:
    watchdog_latency_s: float = math.nan
    largest_gap_periods: float = math.nan
    flood_largest_gap_periods: float = math.nan
    flood_watchdog_latency_s: float = math.nan
    extra: dict = field(default_factory=dict)


def _one_line(text: str, limit: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------------
# Running a case in a forked child


@dataclass
class ChildRun:
    exit_code: int | None  # None: killed after the time limit
    stdout: str
    stderr: str
    value: object = None  # what the child's function returned (JSON)
    seconds: float = 0.0


def run_forked(fn: Callable[[], object], timeout_s: float) -> ChildRun:
    """Run ``fn`` in a forked child as the interpreter would run a script: its return value is sent
    back as JSON and the exit status is 0; ``SystemExit`` gives its status; any other exception prints
    its traceback on stderr and gives status 1. Killed after ``timeout_s``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                os.close(read_fd)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                value = None
                try:
                    value = fn()
                    code = 0
                except SystemExit as exc:
                    if exc.code is None:
                        code = 0
                    elif isinstance(exc.code, int):
                        code = exc.code
                    else:
                        print(exc.code, file=sys.stderr)
                        code = 1
                except BaseException:
                    traceback.print_exc()
                    code = 1
                try:
                    payload = json.dumps(value, default=str).encode()
                except (TypeError, ValueError):
                    payload = b"null"
                with os.fdopen(write_fd, "wb") as pipe:
                    pipe.write(payload)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(write_fd)
        chunks: list[bytes] = []
        reader = threading.Thread(target=lambda: chunks.append(_read_all(read_fd)), daemon=True)
        reader.start()
        status = None
        deadline = start + timeout_s
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.02)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = None
        reader.join(timeout=5.0)
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        value = None
        if chunks and chunks[0]:
            try:
                value = json.loads(chunks[0])
            except ValueError:
                value = None
        code = None if status is None else os.waitstatus_to_exitcode(status)
        return ChildRun(code, stdout, stderr, value, seconds)


def _read_all(fd: int) -> bytes:
    data = b""
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(65536):
            data += chunk
    return data


# ----------------------------------------------------------------------------------------------------
# Command-line cases


def _cli_child(argv: list[str]) -> Callable[[], object]:
    def run() -> object:
        from vla_ros.cli import main

        sys.argv = ["vla-ros", *argv]
        raise SystemExit(main(argv))

    return run


def run_cli(argv: list[str], fresh: bool, timeout_s: float = CLI_TIMEOUT_S) -> ChildRun:
    if not fresh:
        return run_forked(_cli_child(argv), timeout_s)
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "vla_ros.cli", *argv],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        return ChildRun(None, _text(exc.stdout), _text(exc.stderr), seconds=time.monotonic() - start)
    return ChildRun(proc.returncode, proc.stdout, proc.stderr, seconds=time.monotonic() - start)


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


# Lines a command prints while it works, which are not its answer: a tqdm progress bar ("reading bags:
# 0%|          | 0/1 [00:00<?, ?bag/s]"), the log of the ROS nodes `sim` runs ("[INFO] [1796...] [vla.x]:")
# and PyBullet's banner.
_WORKING = re.compile(
    r"\d+%\|.*\| *\d+/\d+|^\[(DEBUG|INFO|WARN|ERROR|FATAL)\] \[\d+\.\d+\] \[|^pybullet build time"
)


def _message_lines(stderr: str) -> list[str]:
    """stderr less argparse's usage block, progress and log lines and blank lines: what the user is told."""
    lines, in_usage = [], False
    for line in stderr.replace("\r", "\n").splitlines():
        if _WORKING.search(line):
            continue
        if line.startswith("usage: "):
            in_usage = True
            continue
        if in_usage and line.startswith(" "):
            continue
        in_usage = False
        if line.strip():
            lines.append(line)
    return lines


def classify_user_error(run: ChildRun, names: str | None) -> Result:
    """A user error must be one line naming ``names`` (a regex: the file, field or option), status 2."""
    if run.exit_code is None:
        return Result("hang", f"no answer within the time limit ({run.seconds:.0f} s)")
    lines = _message_lines(run.stderr)
    last = lines[-1] if lines else ""
    if "Traceback (most recent call last)" in run.stderr:
        return Result("traceback", last)
    if run.exit_code < 0:
        return Result("crash", f"killed by signal {-run.exit_code}; {last}")
    if run.exit_code == 0:
        return Result("silent acceptance", "exit 0: " + (run.stdout.strip().splitlines() or [""])[-1])
    if run.exit_code != 2:
        return Result("unclear error", f"exit {run.exit_code}: {last}")
    if len(lines) != 1:
        return Result("unclear error", f"{len(lines)} lines: " + " | ".join(lines[:3]))
    if names and not re.search(names, last):
        return Result("unclear error", f"does not say /{names}/: {last}")
    return Result("clear error", last)


def classify_valid(run: ChildRun, check: Callable[[str], str | None] | None = None) -> Result:
    """A valid (if unusual) input: it must work."""
    if run.exit_code is None:
        return Result("hang", f"no answer within the time limit ({run.seconds:.0f} s)")
    lines = _message_lines(run.stderr)
    last = lines[-1] if lines else ""
    if "Traceback (most recent call last)" in run.stderr:
        return Result("traceback", last)
    if run.exit_code < 0:
        return Result("crash", f"killed by signal {-run.exit_code}")
    if run.exit_code != 0:
        return Result("clear error" if run.exit_code == 2 else "unclear error", f"refused: {last}")
    problem = check(run.stdout) if check else None
    if problem:
        return Result("silent acceptance", problem)
    return Result("survived", (run.stdout.strip().splitlines() or [""])[-1])


# ----------------------------------------------------------------------------------------------------
# Loader cases: the Python API a program calls


def classify_loader(run: ChildRun, names: str | None) -> Result:
    if run.exit_code is None:
        return Result("hang", f"no answer within the time limit ({run.seconds:.0f} s)")
    if run.exit_code < 0:
        return Result("crash", f"killed by signal {-run.exit_code}")
    value = run.value if isinstance(run.value, dict) else {}
    if run.exit_code != 0:
        return Result("traceback", _one_line(run.stderr.strip().splitlines()[-1] if run.stderr else ""))
    if value.get("raised") is None:
        return Result("silent acceptance", _one_line(str(value.get("returned", ""))))
    message = value.get("message", "")
    if not value.get("user_error"):
        return Result("traceback", f"{value['raised']}: {message}")
    if names and not re.search(names, message):
        return Result("unclear error", f"does not say /{names}/: {message}")
    return Result("clear error", f"{value['raised']}: {message}")


def _loader_child(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        from vla_ros.errors import UserInputError

        try:
            returned = fn()
        except Exception as exc:  # what the caller of the API would see
            return {
                "raised": type(exc).__name__,
                "message": " ".join(str(exc).split()),
                "user_error": isinstance(exc, UserInputError),
            }
        return {"raised": None, "returned": repr(returned)[:200]}

    return run


# ----------------------------------------------------------------------------------------------------
# Inputs on disk


def build_inputs(root: Path) -> dict[str, Path]:
    """Checkpoints (one good tiny one and broken copies), images, scenes, vocabularies, bags."""
    import yaml
    from PIL import Image

    paths: dict[str, Path] = {}
    # The tiny checkpoint is built in a child: no torch op may run in this process before it forks.
    model = root / "model"
    made = run_forked(lambda: str(_make_tiny(model)), 300.0)
    if made.exit_code != 0:
        raise RuntimeError(f"could not build the tiny checkpoint: {made.stderr[-2000:]}")
    paths["model"] = model
    shard = sorted(model.glob("model-*.safetensors"))[-1]

    def broken(name: str, damage: Callable[[Path], None]) -> None:
        shutil.copytree(model, root / name)
        damage(root / name)
        paths[name] = root / name

    def set_config(**fields) -> Callable[[Path], None]:
        def damage(d: Path) -> None:
            config = json.loads((d / "config.json").read_text())
            for key, value in fields.items():
                if value is _DELETE:
                    config.pop(key, None)
                else:
                    config[key] = value
            (d / "config.json").write_text(json.dumps(config))

        return damage

    broken("truncated_shard", lambda d: (d / shard.name).write_bytes((d / shard.name).read_bytes()[:4096]))
    broken("garbage_shard", lambda d: (d / shard.name).write_bytes(b"garbage" * 100))
    broken("empty_shard", lambda d: (d / shard.name).write_bytes(b""))
    broken("missing_shard", lambda d: (d / shard.name).unlink())

    def pickle_only(d: Path) -> None:
        for f in d.glob("model*.safetensors*"):
            f.unlink()
        (d / "pytorch_model.bin").write_bytes(b"\x80\x04\x95pickle")

    broken("pickle_only", pickle_only)
    broken("config_garbage", lambda d: (d / "config.json").write_text("{not json"))
    broken("config_list", lambda d: (d / "config.json").write_text("[1, 2, 3]"))
    broken("no_config", lambda d: (d / "config.json").unlink())
    broken("bins_zero", set_config(n_action_bins=0))
    broken("bins_text", set_config(n_action_bins="many"))
    broken("bins_float", set_config(n_action_bins=255.5))
    broken("unknown_backbone", set_config(vision_backbone_id="resnet-50"))
    broken("image_sizes_text", set_config(image_sizes="224"))
    broken("image_sizes_negative", set_config(image_sizes=[-224, -224]))
    broken("vocab_negative", set_config(text_config={"vocab_size": -5}))
    broken("max_length_zero", set_config(llm_max_length=0))

    def no_stats(d: Path) -> None:
        set_config(norm_stats=_DELETE)(d)
        (d / "dataset_statistics.json").unlink(missing_ok=True)

    broken("no_norm_stats", no_stats)

    def stats_garbage(d: Path) -> None:
        set_config(norm_stats=_DELETE)(d)
        (d / "dataset_statistics.json").write_text("{oops")

    broken("stats_garbage", stats_garbage)

    def edit_stats(edit: Callable[[dict], None]) -> Callable[[Path], None]:
        def damage(d: Path) -> None:
            stats = json.loads((d / "dataset_statistics.json").read_text())
            for entry in stats.values():
                edit(entry["action"])
            # json writes NaN and Infinity as Python's json reads them (not strict JSON).
            (d / "dataset_statistics.json").write_text(json.dumps(stats))

        return damage

    def nan(action: dict) -> None:
        action["q01"][0], action["q99"][1] = float("nan"), float("inf")

    broken("stats_nan", edit_stats(nan))
    broken("stats_short", edit_stats(lambda action: action.update(q01=action["q01"][:3])))
    broken("stats_swapped", edit_stats(lambda action: action.update(q01=action["q99"], q99=action["q01"])))
    broken("no_tokenizer", lambda d: [f.unlink() for f in d.glob("tokenizer*")])
    (root / "weights.pt").write_bytes(b"\x80\x04\x95pickle")
    paths["weights.pt"] = root / "weights.pt"
    (root / "empty_dir").mkdir()
    paths["empty_dir"] = root / "empty_dir"

    # Images.
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "ok.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(root / "one_pixel.png")
    (root / "garbage.png").write_bytes(b"not a png at all")
    (root / "empty.png").write_bytes(b"")
    png = (root / "ok.png").read_bytes()
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    grey16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(grey16).save(root / "grey16.png")
    # 10000 x 10000 at one bit per pixel: 12 MB to write, 300 MB to decode as RGB.
    Image.new("1", (10000, 10000)).save(root / "huge.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 4), dtype=np.uint8), "RGBA").save(root / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), "L").save(root / "grey8.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "ok.jpg")
    (root / "image.txt").write_text("hello")
    for name in ("ok.png", "one_pixel.png", "garbage.png", "empty.png", "truncated.png", "grey16.png"):
        paths[name] = root / name
    for name in ("huge.png", "rgba.png", "grey8.png", "ok.jpg", "image.txt"):
        paths[name] = root / name

    # Scenes and vocabularies.
    scene = {
        "objects": [
            {
                "id": "gear_red",
                "name": "red gear",
                "kind": "part",
                "category": "gear",
                "color": "red",
                "position": [0.5, 0.1, 0.02],
            },
        ],
        "locations": [{"id": "bin", "name": "bin", "category": "bin", "position": [0.4, -0.3, 0.0]}],
        "holding": None,
    }
    scenes = {
        "scene_ok.yaml": yaml.safe_dump(scene),
        "scene_garbage.yaml": "objects: [unclosed\n  - : :",
        "scene_list.yaml": "- 1\n- 2\n",
        "scene_other.yaml": yaml.safe_dump({"robot": "panda", "speed": 3}),
        "scene_empty.yaml": "",
        "scene_position_text.yaml": yaml.safe_dump(
            {**scene, "objects": [{**scene["objects"][0], "position": "left"}]}
        ),
        "scene_position_nan.json": json.dumps(
            {**scene, "objects": [{**scene["objects"][0], "position": [0.1, float("nan"), 0]}]}
        ),
        "scene_duplicate_ids.yaml": yaml.safe_dump(
            {**scene, "objects": [scene["objects"][0], scene["objects"][0]]}
        ),
        "scene_kind.yaml": yaml.safe_dump({**scene, "objects": [{**scene["objects"][0], "kind": "robot"}]}),
        "scene_binary.yaml": None,
        "vocab_garbage.yaml": "synonyms: [oops\n",
        "vocab_list.yaml": "- a\n- b\n",
        "vocab_wrong_type.yaml": yaml.safe_dump({"objects": "gear"}),
    }
    for name, text in scenes.items():
        if text is None:
            (root / name).write_bytes(bytes(range(256)) * 4)
        else:
            (root / name).write_text(text)
        paths[name] = root / name

    # Bags.
    from vla_ros.data.synthetic import write_demo_bag

    actions = np.zeros((6, 7))
    actions[:, 6] = 1.0
    paths["bag"] = write_demo_bag(root / "bag", actions, image_size=(32, 32))
    (root / "not_a_bag").mkdir()
    (root / "not_a_bag" / "metadata.yaml").write_text("this: is not rosbag2 metadata\n")
    paths["not_a_bag"] = root / "not_a_bag"
    (root / "bag_file.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 64)
    paths["bag_file.mcap"] = root / "bag_file.mcap"
    shutil.copytree(paths["bag"], root / "bag_truncated")
    for f in (root / "bag_truncated").glob("*.mcap"):
        f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 3])
    paths["bag_truncated"] = root / "bag_truncated"
    (root / "out_is_a_file").write_text("x")
    paths["out_is_a_file"] = root / "out_is_a_file"
    return paths


_DELETE = object()


def _make_tiny(path: Path) -> Path:
    from vla_ros.model.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(path, seed=0)


# ----------------------------------------------------------------------------------------------------
# The command-line and loader cases


def cli_cases(p: dict[str, Path], fresh: bool) -> list[Case]:
    cases: list[Case] = []

    def user_error(name: str, argv: list[str], names: str | None, quick: bool = False) -> None:
        argv = [str(a) for a in argv]
        cases.append(Case("cli", name, lambda: classify_user_error(run_cli(argv, fresh), names), quick))

    def valid(name: str, argv: list[str], check=None, quick: bool = False) -> None:
        argv = [str(a) for a in argv]
        cases.append(Case("cli", name, lambda: classify_valid(run_cli(argv, fresh), check), quick))

    def predict(**kw) -> list[str]:
        args = {"--model": p["model"], "--image": p["ok.png"], "--instruction": "pick up the red gear"}
        args.update({k.replace("_", "-") if k.startswith("--") else k: v for k, v in kw.items()})
        argv = ["predict"]
        for key, value in args.items():
            if value is None:
                continue
            argv += [key] if value is True else [key, value]
        return argv

    # predict: images
    user_error("predict: image file missing", predict(**{"--image": p["model"] / "nope.png"}), "nope.png")
    user_error(
        "predict: image is garbage bytes", predict(**{"--image": p["garbage.png"]}), "garbage.png", True
    )
    user_error("predict: image is an empty file", predict(**{"--image": p["empty.png"]}), "empty.png")
    user_error("predict: truncated PNG", predict(**{"--image": p["truncated.png"]}), "truncated.png")
    user_error("predict: 1x1 image", predict(**{"--image": p["one_pixel.png"]}), "1x1")
    user_error("predict: 10000x10000 PNG", predict(**{"--image": p["huge.png"]}), "pixels")
    user_error("predict: image is a text file", predict(**{"--image": p["image.txt"]}), "image.txt")
    user_error("predict: image is a directory", predict(**{"--image": p["empty_dir"]}), "empty_dir")
    valid("predict: 16-bit grey PNG", predict(**{"--image": p["grey16.png"]}))
    valid("predict: RGBA PNG", predict(**{"--image": p["rgba.png"]}))
    valid("predict: JPEG", predict(**{"--image": p["ok.jpg"]}))
    # predict: instructions
    user_error("predict: empty instruction", predict(**{"--instruction": ""}), "instruction", True)
    user_error("predict: whitespace instruction", predict(**{"--instruction": " \t\n "}), "instruction")
    user_error(
        "predict: control characters only",
        predict(**{"--instruction": "\x01\x02\x1b\x7f\u200b"}),
        "instruction",
    )
    user_error("predict: 100 kB instruction", predict(**{"--instruction": "go " * 34000}), "tokens")
    valid("predict: control characters inside", predict(**{"--instruction": "pick\x07 up the\x1b gear"}))
    valid("predict: Chinese + emoji instruction", predict(**{"--instruction": "把红色齿轮放进箱子 🙂"}))
    # predict: checkpoints
    user_error("predict: model dir missing", predict(**{"--model": p["model"].parent / "nowhere"}), "nowhere")
    user_error("predict: model is a .pt file", predict(**{"--model": p["weights.pt"]}), "weights.pt", True)
    user_error("predict: model dir empty", predict(**{"--model": p["empty_dir"]}), "empty_dir")
    user_error("predict: no config.json", predict(**{"--model": p["no_config"]}), "config.json")
    user_error("predict: config.json not JSON", predict(**{"--model": p["config_garbage"]}), "config.json")
    user_error("predict: config.json is a list", predict(**{"--model": p["config_list"]}), "config.json")
    shard = r"model-\d+-of-\d+\.safetensors"
    user_error("predict: truncated safetensors", predict(**{"--model": p["truncated_shard"]}), shard, True)
    user_error("predict: garbage safetensors", predict(**{"--model": p["garbage_shard"]}), shard)
    user_error("predict: empty safetensors", predict(**{"--model": p["empty_shard"]}), shard)
    user_error("predict: shard missing", predict(**{"--model": p["missing_shard"]}), shard)
    user_error(
        "predict: pickle-only checkpoint", predict(**{"--model": p["pickle_only"]}), "safetensors", True
    )
    user_error("predict: n_action_bins 0", predict(**{"--model": p["bins_zero"]}), "n_action_bins")
    user_error("predict: n_action_bins 'many'", predict(**{"--model": p["bins_text"]}), "n_action_bins")
    user_error("predict: n_action_bins 255.5", predict(**{"--model": p["bins_float"]}), "n_action_bins")
    user_error(
        "predict: unknown vision_backbone_id",
        predict(**{"--model": p["unknown_backbone"]}),
        "vision_backbone",
    )
    user_error("predict: image_sizes '224'", predict(**{"--model": p["image_sizes_text"]}), "image_sizes")
    user_error(
        "predict: image_sizes negative", predict(**{"--model": p["image_sizes_negative"]}), "image_sizes"
    )
    user_error("predict: vocab_size -5", predict(**{"--model": p["vocab_negative"]}), "vocab_size")
    user_error("predict: llm_max_length 0", predict(**{"--model": p["max_length_zero"]}), "llm_max_length")
    user_error("predict: no norm stats anywhere", predict(**{"--model": p["no_norm_stats"]}), "statistics")
    user_error(
        "predict: dataset_statistics.json garbage", predict(**{"--model": p["stats_garbage"]}), "statistics"
    )
    user_error("predict: NaN/inf in norm stats", predict(**{"--model": p["stats_nan"]}), "q01|q99|finite")
    user_error("predict: 3-D norm stats, 7-D action", predict(**{"--model": p["stats_short"]}), "q01|q99")
    user_error("predict: norm stats q01 > q99", predict(**{"--model": p["stats_swapped"]}), "q01|q99")
    user_error("predict: tokenizer files missing", predict(**{"--model": p["no_tokenizer"]}), "tokenizer")
    user_error("predict: --unnorm-key unknown", predict(**{"--unnorm-key": "nope"}), "nope")
    user_error(
        "predict: --adapter missing", predict(**{"--adapter": p["model"].parent / "no_adapter"}), "no_adapter"
    )
    user_error("predict: --adapter empty dir", predict(**{"--adapter": p["empty_dir"]}), "empty_dir|adapter")
    # predict: flags
    user_error("predict: --precision fp8", predict(**{"--precision": "fp8"}), "precision", True)
    user_error("predict: --quantization 3bit", predict(**{"--quantization": "3bit"}), "quantization")
    user_error("predict: --device cuda without a GPU", predict(**{"--device": "cuda"}), "cuda|device")
    user_error("predict: --device potato", predict(**{"--device": "potato"}), "potato|device")
    user_error("predict: unknown flag", [*predict(), "--tempreature", "0.7"], "tempreature")
    user_error("predict: --instruction missing", predict(**{"--instruction": None}), "instruction")
    user_error("no command, unknown command", ["frobnicate"], "frobnicate")

    # serve (refused before Ray starts)
    user_error(
        "serve: model dir missing", ["serve", "--model", p["model"].parent / "nowhere"], "nowhere", True
    )
    user_error("serve: model is a .pt file", ["serve", "--model", p["weights.pt"]], "weights.pt")
    user_error("serve: --port 70000", ["serve", "--model", p["model"], "--port", "70000"], "port")
    user_error(
        "serve: --max-batch-size 0", ["serve", "--model", p["model"], "--max-batch-size", "0"], "batch"
    )
    user_error("serve: --num-replicas 0", ["serve", "--model", p["model"], "--num-replicas", "0"], "replicas")
    user_error(
        "serve: --batch-wait-timeout-s -1",
        ["serve", "--model", p["model"], "--batch-wait-timeout-s", "-1"],
        "timeout",
    )

    # disambiguate
    def dis(text: str, scene: str = "scene_ok.yaml", *extra) -> list[str]:
        return ["disambiguate", text, "--scene", p.get(scene, scene), *extra]

    user_error("disambiguate: scene missing", dis("pick the gear", "nowhere.yaml"), "nowhere.yaml", True)
    user_error("disambiguate: scene not YAML", dis("pick the gear", "scene_garbage.yaml"), "scene_garbage")
    user_error("disambiguate: scene is a list", dis("pick the gear", "scene_list.yaml"), "scene_list", True)
    user_error("disambiguate: any YAML as a scene", dis("pick the gear", "scene_other.yaml"), "scene_other")
    user_error("disambiguate: empty scene file", dis("pick the gear", "scene_empty.yaml"), "scene_empty")
    user_error("disambiguate: binary scene file", dis("pick the gear", "scene_binary.yaml"), "scene_binary")
    user_error("disambiguate: position 'left'", dis("pick the gear", "scene_position_text.yaml"), "position")
    user_error("disambiguate: position NaN", dis("pick the gear", "scene_position_nan.json"), "position")
    user_error("disambiguate: duplicate ids", dis("pick the gear", "scene_duplicate_ids.yaml"), "gear_red|id")
    user_error("disambiguate: kind 'robot'", dis("pick the gear", "scene_kind.yaml"), "kind")
    user_error("disambiguate: scene is a directory", dis("pick the gear", "empty_dir"), "empty_dir")
    user_error(
        "disambiguate: vocabulary not YAML",
        dis("pick the gear", "scene_ok.yaml", "--vocabulary", p["vocab_garbage.yaml"]),
        "vocab_garbage",
    )
    user_error(
        "disambiguate: vocabulary missing",
        dis("pick the gear", "scene_ok.yaml", "--vocabulary", p["model"].parent / "nope.yaml"),
        "nope.yaml",
    )
    user_error(
        "disambiguate: vocabulary is a list",
        dis("pick the gear", "scene_ok.yaml", "--extra-vocabulary", p["vocab_list.yaml"]),
        "vocab_list",
    )
    user_error(
        "disambiguate: vocabulary field wrong type",
        dis("pick the gear", "scene_ok.yaml", "--extra-vocabulary", p["vocab_wrong_type.yaml"]),
        "vocab_wrong_type|objects",
    )

    def answered(stdout: str) -> str | None:
        return None if '"status"' in stdout else "no resolution printed"

    def asks(stdout: str) -> str | None:
        """Nothing to act on: the resolver must ask (as the node does), never resolve."""
        return None if '"status": "clarify"' in stdout else "resolved or refused an empty instruction"

    valid("disambiguate: empty text", dis(""), asks)

    valid("disambiguate: 100 kB text", dis("put it in the bin " * 6000), answered)
    valid("disambiguate: control characters", dis("pick\x00 the\x1b[31m red gear\x07"), answered)

    # eval-bag
    user_error(
        "eval-bag: bag missing", ["eval-bag", p["model"].parent / "nobag", "--recorded"], "nobag", True
    )
    user_error("eval-bag: not a bag (metadata)", ["eval-bag", p["not_a_bag"], "--recorded"], "not_a_bag")
    user_error("eval-bag: garbage .mcap file", ["eval-bag", p["bag_file.mcap"], "--recorded"], "bag_file")
    user_error("eval-bag: truncated mcap", ["eval-bag", p["bag_truncated"], "--recorded"], "bag_truncated")
    user_error("eval-bag: no --model nor --recorded", ["eval-bag", p["bag"]], "--model")
    out = p["model"].parent / "eval_out"
    user_error(
        "eval-bag: --model missing",
        ["eval-bag", p["bag"], "--model", p["model"].parent / "nowhere", "--out", out, "--no-progress"],
        "nowhere",
    )
    user_error(
        "eval-bag: --model truncated safetensors",
        ["eval-bag", p["bag"], "--model", p["truncated_shard"], "--out", out, "--no-progress"],
        shard,
    )
    user_error(
        "eval-bag: --batch-size 0",
        ["eval-bag", p["bag"], "--recorded", "--batch-size", "0", "--out", out, "--no-progress"],
        "batch",
    )
    user_error(
        "eval-bag: --out is a file",
        ["eval-bag", p["bag"], "--recorded", "--out", p["out_is_a_file"], "--no-progress"],
        "out_is_a_file",
    )

    # sim (refused before the workcell starts)
    user_error("sim: --episodes 0", ["sim", "--episodes", "0"], "episodes", True)
    user_error("sim: --policy model without --model", ["sim", "--policy", "model"], "--model")
    user_error(
        "sim: --policy model, model missing",
        ["sim", "--policy", "model", "--model", p["model"].parent / "nowhere"],
        "nowhere",
    )
    user_error(
        "sim: --policy model, truncated safetensors",
        ["sim", "--policy", "model", "--model", p["truncated_shard"], "--max-steps", "2"],
        shard,
    )
    user_error("sim: --real-time-factor 0", ["sim", "--real-time-factor", "0"], "real-time-factor")
    user_error("sim: --real-time-factor -2", ["sim", "--real-time-factor", "-2"], "real-time-factor")
    user_error("sim: --max-steps 0", ["sim", "--max-steps", "0"], "max-steps")
    user_error("sim: --task dance", ["sim", "--task", "dance"], "task")
    user_error(
        "sim: --operator-text empty", ["sim", "--operator-text", ""], "operator-text|instruction|empty"
    )
    user_error("sim: --record is a file", ["sim", "--record", p["out_is_a_file"]], "out_is_a_file")
    return cases


def loader_cases(p: dict[str, Path]) -> list[Case]:
    cases: list[Case] = []

    def case(name: str, fn: Callable[[], object], names: str | None, quick: bool = False) -> None:
        cases.append(
            Case("loader", name, lambda: classify_loader(run_forked(_loader_child(fn), 120.0), names), quick)
        )

    def load(key: str, **kw) -> Callable[[], object]:
        def fn() -> object:
            from vla_ros.model.loading import load_checkpoint

            return load_checkpoint(p[key], **{"precision": "fp32", **kw})

        return fn

    case("load_checkpoint: truncated safetensors", load("truncated_shard"), r"\.safetensors", True)
    case("load_checkpoint: garbage safetensors", load("garbage_shard"), r"\.safetensors")
    case("load_checkpoint: pickle only", load("pickle_only"), "safetensors")
    case("load_checkpoint: a file, not a dir", load("weights.pt"), "weights.pt")
    case("load_checkpoint: config.json not JSON", load("config_garbage"), "config.json")
    case("load_checkpoint: n_action_bins 0", load("bins_zero"), "n_action_bins")
    case("load_checkpoint: unknown backbone", load("unknown_backbone"), "vision_backbone_id")

    def statistics(key: str) -> Callable[[], object]:
        def fn() -> object:
            from vla_ros.model.loading import load_checkpoint

            return load_checkpoint(p[key], precision="fp32").action_statistics(None)

        return fn

    case("action_statistics: NaN in norm stats", statistics("stats_nan"), "finite")
    case("action_statistics: q01 > q99", statistics("stats_swapped"), "q01 > q99")
    case("load_checkpoint: quantization '2bit'", load("model", quantization="2bit"), "quantization")
    case("load_checkpoint: precision fp8", load("model", precision="fp8"), "precision")

    def policy_predict(image, instruction) -> Callable[[], object]:
        def fn() -> object:
            from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

            policy = VLAPolicy(PolicyConfig(p["model"], precision="fp32"))
            return policy.predict_action(image() if callable(image) else image, instruction).vector

        return fn

    ok = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    case("predict_action: empty instruction", policy_predict(ok, ""), "instruction")
    case("predict_action: float image in [0, 1]", policy_predict(ok / 255.0, "go"), "image|uint8|dtype")
    case("predict_action: 2-D image", policy_predict(ok[..., 0], "go"), "image|shape|3")
    case(
        "predict_action: 0x0 image", policy_predict(np.zeros((0, 0, 3), np.uint8), "go"), "image|empty|pixels"
    )

    def read(key: str) -> Callable[[], object]:
        def fn() -> object:
            from vla_ros.image_codec import read_image_file

            rgb = read_image_file(p[key])
            return f"{rgb.shape} mean {rgb.mean():.1f}"

        return fn

    case("read_image_file: 10000x10000 PNG", read("huge.png"), "pixels", True)
    case("read_image_file: truncated PNG", read("truncated.png"), "truncated.png")

    def scene(key: str) -> Callable[[], object]:
        def fn() -> object:
            from vla_ros.disambiguation.scene import load_scene_file

            return load_scene_file(p[key])

        return fn

    case("load_scene_file: any YAML", scene("scene_other.yaml"), "scene_other")
    case("load_scene_file: binary", scene("scene_binary.yaml"), "scene_binary")
    return cases


# ----------------------------------------------------------------------------------------------------
# Node cases: the installed node executables as processes, this process as camera, operator and arm

FRAME = "panda_link0"
COMMAND_TIMEOUT_S = 0.5
OUTPUT_RATE_HZ = 50.0
MAX_LINEAR_M_S = 0.1
MAX_ANGULAR_RAD_S = 0.5
DIAGNOSTIC_WAIT_S = 8.0


def _executable(name: str) -> str:
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        path = os.path.join(prefix, "lib", "vla_ros", name)
        if prefix and os.path.isfile(path):
            return path
    raise SystemExit(
        f"no lib/vla_ros/{name} on AMENT_PREFIX_PATH: run `make build`, then run this through "
        "scripts/with_env.sh"
    )


class NodeProcess:
    """One installed node executable, started with ``--ros-args`` and stopped with SIGINT."""

    def __init__(self, executable: str, ros_args: list[str], log: Path) -> None:
        self.name = executable
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, _executable(executable), "--ros-args", "--log-level", "warn", *ros_args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.log_path = log

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exit_note(self) -> str:
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
        return f"{self.name} exited with {self.proc.returncode}: " + " | ".join(tail)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class World:
    """This process's ROS side: publishes what the nodes read and records what they publish."""

    def __init__(self, context) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped, TwistStamped
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CompressedImage, Image
        from std_msgs.msg import Bool, String
        from std_srvs.srv import Trigger

        from vla_ros.msg import ActionStep, GripperCommand, Instruction, Scene
        from vla_ros.nodes.common import COMMAND_QOS, LATCHED_QOS

        self.node = node = Node("fault_world", context=context)
        self.lock = threading.Lock()
        self.outputs: list[tuple[float, np.ndarray]] = []  # controller outputs (stamp, twist)
        self.gripper_out: list[float] = []
        self.steps: list[float] = []  # receive times of the policy's ActionSteps
        self.dis_instructions: list[str] = []
        self.dis_estops: list[bool] = []
        self.feedback: list[str] = []
        self.diagnostics: dict[
            str, tuple[int, int, str, dict[str, str]]
        ] = {}  # name: (n, level, msg, values)
        self.pose_mode = "ok"  # ok | nan | off

        self.twist_pub = node.create_publisher(TwistStamped, "twist_cmd", COMMAND_QOS)
        self.gripper_pub = node.create_publisher(GripperCommand, "gripper_cmd", COMMAND_QOS)
        self.pose_pub = node.create_publisher(PoseStamped, "ee_pose", COMMAND_QOS)
        self.estop_pub = node.create_publisher(Bool, "estop", LATCHED_QOS)
        self.image_pub = node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.compressed_pub = node.create_publisher(
            CompressedImage, "image_raw/compressed", qos_profile_sensor_data
        )
        self.text_pub = node.create_publisher(String, "instruction_text", COMMAND_QOS)
        self.instruction_pub = node.create_publisher(Instruction, "instruction", COMMAND_QOS)
        self.operator_pub = node.create_publisher(String, "operator_text", COMMAND_QOS)
        self.answer_pub = node.create_publisher(String, "clarification_answer", COMMAND_QOS)
        self.scene_pub = node.create_publisher(Scene, "scene", LATCHED_QOS)
        self.reset_client = node.create_client(Trigger, "reset_estop")

        node.create_subscription(TwistStamped, "sim_twist_out", self._on_output, 200)
        node.create_subscription(
            GripperCommand, "gripper_out", lambda m: self._add(self.gripper_out, m.position), 50
        )
        node.create_subscription(ActionStep, "action_step", lambda m: self._add(self.steps, time.time()), 50)
        node.create_subscription(
            Instruction, "dis/instruction", lambda m: self._add(self.dis_instructions, m.text), 50
        )
        node.create_subscription(Bool, "dis/estop", lambda m: self._add(self.dis_estops, m.data), LATCHED_QOS)
        node.create_subscription(String, "feedback", lambda m: self._add(self.feedback, m.data), 50)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        node.create_timer(0.02, self._publish_pose)

    # -- recording
    def _add(self, bucket: list, item) -> None:
        with self.lock:
            bucket.append(item)

    def _on_output(self, msg) -> None:
        t, w = msg.twist.linear, msg.twist.angular
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self._add(self.outputs, (stamp, np.array([t.x, t.y, t.z, w.x, w.y, w.z])))

    def _on_diagnostics(self, msg) -> None:
        with self.lock:
            for status in msg.status:
                n = self.diagnostics.get(status.name, (0,))[0] + 1
                level = status.level[0] if isinstance(status.level, bytes) else int(status.level)
                self.diagnostics[status.name] = (
                    n,
                    level,
                    status.message,
                    {kv.key: kv.value for kv in status.values},
                )

    def count(self, bucket: list) -> int:
        with self.lock:
            return len(bucket)

    def diag(self, name: str) -> tuple[int, int, str, dict[str, str]]:
        with self.lock:
            return self.diagnostics.get(name, (0, 0, "", {}))

    def wait_diag(
        self, name: str, predicate: Callable[[dict[str, str]], bool], timeout_s: float
    ) -> dict | None:
        """The first report of ``name`` newer than now whose values satisfy ``predicate``."""
        seen = self.diag(name)[0]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            n, _, _, values = self.diag(name)
            if n > seen and predicate(values):
                return values
            time.sleep(0.05)
        return None

    def outputs_since(self, t0: float) -> list[tuple[float, np.ndarray]]:
        with self.lock:
            return [(t, v) for t, v in self.outputs if t >= t0]

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    # -- publishing
    def _publish_pose(self) -> None:
        from geometry_msgs.msg import PoseStamped

        if self.pose_mode == "off":
            return
        msg = PoseStamped()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = FRAME
        xyz = (math.nan, 0.0, 0.3) if self.pose_mode == "nan" else (0.5, 0.0, 0.3)
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = xyz
        msg.pose.orientation.w = 1.0
        self.pose_pub.publish(msg)

    def twist(
        self, values, stamp_offset_s: float = 0.0, frame_id: str = FRAME, stamp_s: float | None = None
    ) -> float:
        from geometry_msgs.msg import TwistStamped

        from vla_ros.nodes.common import s_to_stamp

        v = [float(x) for x in values] + [0.0] * (6 - len(values))
        msg = TwistStamped()
        t = self.now() + stamp_offset_s if stamp_s is None else stamp_s
        msg.header.stamp = s_to_stamp(max(t, 0.0))
        msg.header.frame_id = frame_id
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = v[:3]
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = v[3:]
        self.twist_pub.publish(msg)
        return t

    def image(self, rgb: np.ndarray | None = None, age_s: float = 0.0, **fields) -> None:
        from sensor_msgs.msg import Image

        from vla_ros.nodes.common import s_to_stamp

        rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8) if rgb is None else rgb
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3)
        msg.data = rgb.tobytes()
        for key, value in fields.items():
            setattr(msg, key, value)
        msg.header.stamp = s_to_stamp(max(self.now() - age_s, 0.0))
        msg.header.frame_id = "camera"
        self.image_pub.publish(msg)

    def compressed(self, data: bytes, fmt: str = "png") -> None:
        from sensor_msgs.msg import CompressedImage

        msg = CompressedImage(format=fmt)
        msg.data = data
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.compressed_pub.publish(msg)

    def say(self, text: str) -> None:
        from std_msgs.msg import String

        self.text_pub.publish(String(data=text))

    def operator(self, text: str, answer: bool = False) -> None:
        from std_msgs.msg import String

        (self.answer_pub if answer else self.operator_pub).publish(String(data=text))


def _child_role(args: argparse.Namespace) -> int:
    """``--role commands``: twist commands at ``--rate-hz`` until killed; ``--role estop``: press the
    e-stop (latched) and wait to be killed. Both print one line once the controller has matched them."""
    import rclpy
    from geometry_msgs.msg import TwistStamped
    from std_msgs.msg import Bool

    from vla_ros.nodes.common import COMMAND_QOS, LATCHED_QOS

    rclpy.init()
    node = rclpy.create_node(f"fault_{args.role}_publisher")
    if args.role == "estop":
        pub = node.create_publisher(Bool, "estop", LATCHED_QOS)
    else:
        pub = node.create_publisher(TwistStamped, "twist_cmd", COMMAND_QOS)
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    print("ready", flush=True)
    if args.role == "estop":
        pub.publish(Bool(data=True))
        while True:
            time.sleep(1.0)
    msg = TwistStamped()
    msg.header.frame_id = FRAME
    msg.twist.linear.x = 0.05
    start, sent = time.monotonic(), 0
    while True:
        now = node.get_clock().now()
        msg.header.stamp = now.to_msg()
        pub.publish(msg)
        print(now.nanoseconds * 1e-9, flush=True)  # the stamp of the last command, when it is killed
        sent += 1
        delay = start + sent / args.rate_hz - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _start_role(role: str, rate_hz: float = 20.0) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--role", role, "--rate-hz", str(rate_hz)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    proc.stdout.readline()  # "ready"
    return proc


def _kill(proc: subprocess.Popen) -> float:
    """SIGKILL, as a crashing process dies; the stamp of the last command it printed (NaN: none)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    lines = proc.stdout.read().split() if proc.stdout else []
    try:
        return float(lines[-1])
    except (IndexError, ValueError):
        return math.nan


def _within_limits(outputs: list[tuple[float, np.ndarray]]) -> str | None:
    if not outputs:
        return None
    twists = np.array([v for _, v in outputs])
    if not np.all(np.isfinite(twists)):
        return "a non-finite output"
    limits = np.array([MAX_LINEAR_M_S] * 3 + [MAX_ANGULAR_RAD_S] * 3)
    worst = np.max(np.abs(twists) - limits)
    return f"an output {worst:.3g} past a speed limit" if worst > 1e-9 else None


class NodeSuite:
    def __init__(self, paths: dict[str, Path], logs: Path) -> None:
        self.p = paths
        self.logs = logs
        self.world: World = None  # type: ignore[assignment] - set by run_node_cases
        self.m = Measurements()
        self.controller: NodeProcess | None = None
        self.policy: NodeProcess | None = None
        self.broken_policy: NodeProcess | None = None
        self.disambiguation: NodeProcess | None = None

    # -- processes
    def launch(self, quick: bool) -> None:
        """Start the node processes (they load while the command-line cases run)."""
        self.controller = NodeProcess(
            "controller_node",
            [
                "-p",
                "output_mode:=sim",
                "-p",
                f"output_rate_hz:={OUTPUT_RATE_HZ}",
                "-p",
                f"command_timeout_s:={COMMAND_TIMEOUT_S}",
                "-p",
                f"base_frame_id:={FRAME}",
            ],
            self.logs / "controller_node.log",
        )
        self.policy = NodeProcess(
            "policy_node",
            [
                "-p",
                f"model_dir:={self.p['model']}",
                "-p",
                "device:=cpu",
                "-p",
                "precision:=fp32",
                "-p",
                "image_max_age_s:=2.0",
                "-p",
                "max_rate_hz:=10.0",
                "-p",
                "max_image_pixels:=4000000",
                "-r",
                "twist_cmd:=policy/twist_cmd",
                "-r",
                "gripper_cmd:=policy/gripper_cmd",
            ],
            self.logs / "policy_node.log",
        )
        if not quick:
            self.broken_policy = NodeProcess(
                "policy_node",
                [
                    "-r",
                    "__node:=policy_node_broken",
                    "-p",
                    f"model_dir:={self.p['truncated_shard']}",
                    "-r",
                    "twist_cmd:=broken/twist_cmd",
                    "-r",
                    "action_step:=broken/action_step",
                    "-r",
                    "gripper_cmd:=broken/gripper_cmd",
                    "-r",
                    "image_raw:=broken/image_raw",
                ],
                self.logs / "policy_node_broken.log",
            )
        self.disambiguation = NodeProcess(
            "disambiguation_node",
            [
                "-p",
                f"static_scene_file:={self.p['scene_ok.yaml']}",
                "-r",
                "instruction:=dis/instruction",
                "-r",
                "estop:=dis/estop",
            ],
            self.logs / "disambiguation_node.log",
        )

    def wait_ready(self) -> None:
        w = self.world
        for name in (
            "controller_node: controller",
            "policy_node: policy",
            "disambiguation_node: disambiguation",
        ):
            if w.wait_diag(name, lambda v: True, 120.0) is None:
                raise RuntimeError(f"no diagnostics from {name} within 120 s; see the logs in {self.logs}")
        if w.wait_diag("policy_node: policy", lambda v: v.get("active") == "True", 120.0) is None:
            raise RuntimeError(f"policy_node never became active; see {self.logs / 'policy_node.log'}")

    def stop(self) -> None:
        for proc in (self.controller, self.policy, self.broken_policy, self.disambiguation):
            if proc is not None:
                proc.stop()

    def _dead(self, proc: NodeProcess) -> Result | None:
        return None if proc.alive() else Result("crash", proc.exit_note())

    # -- controller
    def controller_refuses(self, counter: str, send: Callable[[], None], reason: str = "") -> Result:
        """``send`` a bad command (three times); the counter on /diagnostics must rise, the outputs stay
        finite and within the limits, the process alive."""
        name = "controller_node: controller"
        before = int(self.world.diag(name)[3].get(counter, "0"))
        t0 = self.world.now()
        for _ in range(3):
            send()
            time.sleep(0.05)
        values = self.world.wait_diag(name, lambda v: int(v.get(counter, "0")) > before, DIAGNOSTIC_WAIT_S)
        time.sleep(0.2)
        if (dead := self._dead(self.controller)) is not None:
            return dead
        if (over := _within_limits(self.world.outputs_since(t0))) is not None:
            return Result("silent acceptance", over)
        if values is None:
            last = self.world.diag(name)
            if last[0] == 0:
                return Result("hang", "no diagnostics")
            return Result(
                "silent acceptance",
                f"{counter} did not rise on /diagnostics: {last[3].get('last_reason', '')}",
            )
        said = values.get("last_refused_input", "") if reason else values.get("last_reason", "")
        if reason and reason not in said:
            return Result("unclear error", f"last_refused_input does not say {reason!r}: {said}")
        return Result("survived", f"{counter} {before} -> {values[counter]}; {said}")

    def controller_clamps(self, values: list[float]) -> Result:
        """A finite command past the limits: followed, within the limits."""
        t0 = self.world.now()
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            self.world.twist(values)
            time.sleep(0.05)
        time.sleep(0.2)
        if (dead := self._dead(self.controller)) is not None:
            return dead
        outputs = self.world.outputs_since(t0)
        if not outputs:
            return Result("hang", "no outputs")
        if (over := _within_limits(outputs)) is not None:
            return Result("silent acceptance", over)
        peak = np.max(np.abs(np.array([v for _, v in outputs])), axis=0)
        return Result("survived", f"{len(outputs)} outputs, peak |v| {np.round(peak, 3).tolist()}")

    def watchdog_after_kill(self) -> Result:
        """A command publisher (its own process) killed mid-stream: zero output by the deadline."""
        w = self.world
        proc = _start_role("commands", 20.0)
        try:
            t0 = w.now()
            deadline = time.monotonic() + 15.0
            while time.monotonic() < deadline and not any(v[0] > 0.02 for _, v in w.outputs_since(t0)):
                time.sleep(0.05)
            if not any(v[0] > 0.02 for _, v in w.outputs_since(t0)):
                return Result("hang", "the controller never followed the publisher's commands")
            time.sleep(0.5)
        finally:
            last_command = _kill(proc)
        time.sleep(COMMAND_TIMEOUT_S + 1.0)
        if (dead := self._dead(self.controller)) is not None:
            return dead
        if math.isnan(last_command):
            return Result("hang", "the command publisher printed no stamp")
        after = w.outputs_since(last_command)
        moving = [t for t, v in after if np.any(v)]
        zeros = [t for t, v in after if not np.any(v) and (not moving or t > max(moving))]
        if not zeros:
            return Result("silent acceptance", "the output never went to zero after the publisher died")
        latency = zeros[0] - last_command
        self.m.watchdog_latency_s = latency
        late = [t for t in moving if t >= last_command + COMMAND_TIMEOUT_S]
        if late:
            return Result(
                "silent acceptance", f"moving {late[-1] - last_command:.3f} s after the last command"
            )
        return Result(
            "survived", f"zero output {latency:.3f} s after the last command (timeout {COMMAND_TIMEOUT_S} s)"
        )

    def estop_across_restart(self) -> Result:
        """E-stop pressed by a process that then dies; the command publisher restarts; nothing moves
        until reset_estop; after it, commands move the arm again."""
        from std_msgs.msg import Bool
        from std_srvs.srv import Trigger

        w = self.world
        name = "controller_node: controller"
        commands = _start_role("commands", 20.0)
        try:
            estop = _start_role("estop")
            latched = w.wait_diag(name, lambda v: v.get("estop_latched") == "True", DIAGNOSTIC_WAIT_S)
            _kill(estop)
            _kill(commands)
            if latched is None:
                return Result("silent acceptance", "estop True never latched")
            commands = _start_role("commands", 20.0)  # the policy comes back
            t0 = w.now()
            time.sleep(1.5)
            moved = [t for t, v in w.outputs_since(t0) if np.any(v)]
            still = w.wait_diag(name, lambda v: True, DIAGNOSTIC_WAIT_S) or {}
            if moved or still.get("estop_latched") != "True":
                return Result(
                    "silent acceptance", f"moved after the restart ({len(moved)} outputs) while latched"
                )
            # Release the button (latched topic), then reset: the new publisher moves the arm again.
            w.estop_pub.publish(Bool(data=False))
            time.sleep(0.3)
            if not w.reset_client.wait_for_service(timeout_sec=5.0):
                return Result("hang", "reset_estop service not available")
            future = w.reset_client.call_async(Trigger.Request())
            deadline = time.monotonic() + 10.0
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not future.done() or not future.result().success:
                return Result(
                    "hang",
                    f"reset_estop did not succeed: {future.result() if future.done() else 'no answer'}",
                )
            t1 = w.now()
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline and not any(v[0] > 0.02 for _, v in w.outputs_since(t1)):
                time.sleep(0.05)
            if not any(v[0] > 0.02 for _, v in w.outputs_since(t1)):
                return Result("hang", "after reset_estop the arm never followed commands again")
        finally:
            _kill(commands)
        time.sleep(COMMAND_TIMEOUT_S + 0.5)
        if (dead := self._dead(self.controller)) is not None:
            return dead
        return Result("survived", "zero while latched across the restart; moving again after reset_estop")

    def reset_while_engaged(self) -> Result:
        from std_msgs.msg import Bool
        from std_srvs.srv import Trigger

        w = self.world
        w.estop_pub.publish(Bool(data=True))
        if (
            w.wait_diag(
                "controller_node: controller", lambda v: v.get("estop_latched") == "True", DIAGNOSTIC_WAIT_S
            )
            is None
        ):
            return Result("silent acceptance", "estop True never latched")
        future = w.reset_client.call_async(Trigger.Request())
        deadline = time.monotonic() + 10.0
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        w.estop_pub.publish(Bool(data=False))
        time.sleep(0.3)
        release = w.reset_client.call_async(Trigger.Request())
        deadline = time.monotonic() + 10.0
        while not release.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not future.done():
            return Result("hang", "reset_estop did not answer")
        if future.result().success:
            return Result("silent acceptance", "reset while the e-stop was still engaged")
        if not (release.done() and release.result().success):
            return Result("hang", "reset after releasing the e-stop failed")
        return Result("survived", f"refused: {future.result().message}")

    def stale_pose(self, mode: str) -> Result:
        """End-effector pose NaN or gone while commands arrive: the controller stops."""
        w = self.world
        w.pose_mode = mode
        time.sleep(0.7)  # past ee_pose_timeout_s
        t0 = w.now()
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            w.twist([0.08])
            time.sleep(0.05)
        w.pose_mode = "ok"
        values = w.wait_diag("controller_node: controller", lambda v: True, DIAGNOSTIC_WAIT_S) or {}
        time.sleep(COMMAND_TIMEOUT_S + 0.3)
        if (dead := self._dead(self.controller)) is not None:
            return dead
        outputs = [(t, v) for t, v in w.outputs_since(t0 + 0.1) if t <= t0 + 1.0]
        if not outputs:
            return Result("hang", "no outputs")
        moving = [v for _, v in outputs if np.any(np.abs(v) > 1e-9)]
        if moving:
            return Result("silent acceptance", f"{len(moving)} outputs moved without a usable pose")
        return Result(
            "survived",
            f"held zero; last_reason {values.get('last_reason', '')!r}, flags {values.get('last_flags', '')}",
        )

    def flood(self, seconds: float) -> Result:
        """bench_controller_flood's measurement: its own controller, flood and recorder processes."""
        sys.path.insert(0, str(HERE))
        import bench_controller_flood

        domain = _free_domain(exclude={int(os.environ["ROS_DOMAIN_ID"])})
        r = bench_controller_flood.measure_once(seconds=seconds, rate_hz=1000.0, domain_id=domain)
        self.m.flood_largest_gap_periods = r["max_gap"]
        self.m.flood_watchdog_latency_s = r["latency_s"]
        detail = (
            f"{r['achieved_hz']:.0f} Hz sent, {r['outputs']}/{r['expected']} outputs, largest gap "
            f"{r['max_gap']:.2f} periods (p99 {r['p99_gap']:.2f}), watchdog {r['latency_s']:.3f} s, "
            f"controller CPU {r['controller_cpu']:.0%}"
        )
        if r["over_limits"]:
            return Result("silent acceptance", "an output past the limits: " + detail)
        if not math.isfinite(r["max_gap"]) or r["max_gap"] * (1.0 / OUTPUT_RATE_HZ) >= COMMAND_TIMEOUT_S:
            return Result("hang", "the output step starved: " + detail)
        if not math.isfinite(r["latency_s"]):
            return Result("silent acceptance", "never zero after the flood: " + detail)
        return Result("survived", detail)

    # -- policy node
    def policy_refuses(self, send: Callable[[], None], counter: str = "errors", says: str = "") -> Result:
        """``send`` a bad input (twice); the counter must rise on /diagnostics, no step may come of it."""
        w = self.world
        name = "policy_node: policy"
        before = int(w.diag(name)[3].get(counter, "0"))
        steps = w.count(w.steps)
        for _ in range(2):
            send()
            time.sleep(0.1)
        values = w.wait_diag(name, lambda v: int(v.get(counter, "0")) > before, DIAGNOSTIC_WAIT_S)
        time.sleep(0.3)
        if (dead := self._dead(self.policy)) is not None:
            return dead
        if w.count(w.steps) > steps:
            return Result("silent acceptance", f"acted on it ({w.count(w.steps) - steps} steps)")
        if values is None:
            last = w.diag(name)
            if last[0] == 0:
                return Result("hang", "no diagnostics")
            return Result(
                "silent acceptance",
                f"{counter} did not rise on /diagnostics (last_error {last[3].get('last_error', '')!r})",
            )
        message = values.get("last_error", "")
        if says and says not in message:
            return Result("unclear error", f"last_error does not say {says!r}: {message}")
        return Result("survived", f"{counter} {before} -> {values[counter]}: {message}")

    def policy_acts(self, send: Callable[[], None], timeout_s: float = 20.0) -> Result:
        """A valid (if unusual) input: the node must act on it."""
        w = self.world
        steps = w.count(w.steps)
        errors = int(w.diag("policy_node: policy")[3].get("errors", "0"))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and w.count(w.steps) == steps:
            send()
            time.sleep(0.3)
        if (dead := self._dead(self.policy)) is not None:
            return dead
        if w.count(w.steps) > steps:
            return Result("survived", f"acted ({w.count(w.steps) - steps} steps)")
        values = w.diag("policy_node: policy")[3]
        if int(values.get("errors", "0")) > errors:
            return Result("clear error", f"refused: {values.get('last_error', '')}")
        return Result("hang", f"no step within {timeout_s:.0f} s")

    def good_instruction(self) -> None:
        self.world.say("pick up the red gear")
        self.world.wait_diag(
            "policy_node: policy", lambda v: v.get("instruction") == "pick up the red gear", 5.0
        )

    def policy_instruction_refused(self, text: str) -> Result:
        w = self.world
        result = self.policy_refuses(lambda: w.say(text), "errors", "refused instruction")
        if result.outcome == "survived":
            values = w.diag("policy_node: policy")[3]
            if not values.get("refused_input"):
                result = Result("silent acceptance", "refused_input empty on /diagnostics")
            elif self.policy_acts(lambda: w.image(), 1.5).outcome == "survived":
                result = Result(
                    "silent acceptance", "kept acting on the previous instruction after a refusal"
                )
        self.good_instruction()
        return result

    def policy_stop_instruction(self) -> Result:
        from vla_ros.msg import Instruction

        w = self.world
        w.instruction_pub.publish(Instruction(text="", action="stop"))
        values = w.wait_diag(
            "policy_node: policy", lambda v: v.get("instruction", "x") == "", DIAGNOSTIC_WAIT_S
        )
        acted = self.policy_acts(lambda: w.image(), 3.0)
        self.good_instruction()
        if (dead := self._dead(self.policy)) is not None:
            return dead
        if values is None:
            return Result("silent acceptance", "the instruction stayed after a stop")
        if acted.outcome == "survived":
            return Result("silent acceptance", "acted after a stop instruction")
        return Result("survived", "stopped acting")

    def broken_model(self) -> Result:
        """A checkpoint with a truncated shard: the node stays up, unconfigured, and says why on
        /diagnostics, even after other inputs were refused since (the cases before sent some)."""
        name = "policy_node_broken: policy"
        values = self.world.wait_diag(name, lambda v: True, 120.0)
        if (dead := self._dead(self.broken_policy)) is not None:
            return dead
        if values is None:
            return Result("hang", "no diagnostics from the node with a broken checkpoint")
        level, message = self.world.diag(name)[1:3]
        if level != 2 or "safetensors" not in values.get("configure_error", ""):
            return Result("silent acceptance", f"level {level} {message!r}: {values}")
        return Result("survived", f"ERROR on /diagnostics: {values['configure_error']}")

    # -- disambiguation node
    def operator_refused(self, text: str, answer: bool = False) -> Result:
        w = self.world
        name = "disambiguation_node: disambiguation"
        before = int(w.diag(name)[3].get("refused_inputs", "0"))
        forwarded = w.count(w.dis_instructions)
        feedback = w.count(w.feedback)
        w.operator(text, answer)
        values = w.wait_diag(name, lambda v: int(v.get("refused_inputs", "0")) > before, DIAGNOSTIC_WAIT_S)
        if (dead := self._dead(self.disambiguation)) is not None:
            return dead
        if w.count(w.dis_instructions) > forwarded:
            return Result("silent acceptance", "forwarded an instruction")
        if values is None:
            return Result("silent acceptance", "refused_inputs did not rise on /diagnostics")
        if w.count(w.feedback) == feedback:
            return Result("unclear error", "no feedback to the operator")
        return Result("survived", values.get("last_reason", ""))

    def operator_answered(self, text: str, answer: bool = False, expect: str = "feedback") -> Result:
        w = self.world
        buckets = {"feedback": w.feedback, "estop": w.dis_estops, "instruction": w.dis_instructions}
        bucket = buckets[expect]
        before = w.count(bucket)
        w.operator(text, answer)
        deadline = time.monotonic() + DIAGNOSTIC_WAIT_S
        while time.monotonic() < deadline and w.count(bucket) == before:
            time.sleep(0.05)
        if (dead := self._dead(self.disambiguation)) is not None:
            return dead
        if w.count(bucket) == before:
            return Result("hang", f"no {expect} within {DIAGNOSTIC_WAIT_S:.0f} s")
        with w.lock:
            last = bucket[-1]
        return Result("survived", f"{expect}: {str(last)[:80]}")

    def bad_scene(self, edit: Callable) -> Result:
        from geometry_msgs.msg import Point

        from vla_ros.msg import Scene, SceneObject

        w = self.world
        name = "disambiguation_node: disambiguation"
        before = int(w.diag(name)[3].get("bad_scenes", "0"))
        msg = Scene()
        msg.header.stamp = w.node.get_clock().now().to_msg()
        msg.objects = [
            SceneObject(
                id="gear_red",
                name="red gear",
                kind="part",
                category="gear",
                position=Point(x=0.5, y=0.1, z=0.02),
            )
        ]
        edit(msg)
        w.scene_pub.publish(msg)
        values = w.wait_diag(name, lambda v: int(v.get("bad_scenes", "0")) > before, DIAGNOSTIC_WAIT_S)
        if (dead := self._dead(self.disambiguation)) is not None:
            return dead
        if values is None:
            now = w.diag(name)[3]
            return Result(
                "silent acceptance",
                f"scene taken: {now.get('scene_objects')} objects from {now.get('scene_source')}",
            )
        return Result("survived", values.get("last_reason", ""))


def _free_domain(exclude: set[int]) -> int:
    rng = random.SystemRandom()
    while (domain := rng.randint(201, 232)) in exclude:
        pass
    return domain


def node_cases(s: NodeSuite, quick: bool, flood: bool, flood_seconds: float) -> list[Case]:
    from PIL import Image

    w = s.world
    cases: list[Case] = []

    def case(area_name: str, fn: Callable[[], Result], in_quick: bool = False) -> None:
        cases.append(Case("node", area_name, fn, in_quick))

    nan, inf = math.nan, math.inf
    c = s.controller_refuses
    # controller_node: commands
    case("controller: NaN linear.x", lambda: c("commands_rejected_non_finite", lambda: w.twist([nan])), True)
    case(
        "controller: +inf angular.z",
        lambda: c("commands_rejected_non_finite", lambda: w.twist([0, 0, 0, 0, 0, inf])),
    )
    case("controller: -inf linear.y", lambda: c("commands_rejected_non_finite", lambda: w.twist([0, -inf])))
    case("controller: 1e308 linear.x", lambda: s.controller_clamps([1e308]))
    case("controller: -1e308 on every axis", lambda: s.controller_clamps([-1e308] * 6))
    case("controller: 5e-324 (denormal)", lambda: s.controller_clamps([5e-324, 0, 0, 0, 0, -5e-324]))
    case("controller: stamp 10 s old", lambda: c("commands_rejected_stale", lambda: w.twist([0.05], -10.0)))
    case(
        "controller: stamp 10 s ahead",
        lambda: c("commands_rejected_future", lambda: w.twist([0.05], 10.0)),
        True,
    )
    case("controller: stamp zero", lambda: c("commands_rejected_stale", lambda: w.twist([0.05], stamp_s=0.0)))
    # builtin_interfaces/Time counts seconds in an int32: 2.1e9 s (year 2036) is near its end.
    case(
        "controller: stamp in 2036",
        lambda: c("commands_rejected_future", lambda: w.twist([0.05], stamp_s=2.1e9)),
    )

    def out_of_order() -> None:
        now = w.now()
        w.twist([0.02], stamp_s=now)
        w.twist([0.02], stamp_s=now - 0.2)

    case("controller: stamps out of order", lambda: c("commands_rejected_out_of_order", out_of_order))
    case(
        "controller: frame_id 'camera'",
        lambda: c("commands_rejected_frame", lambda: w.twist([0.05], frame_id="camera"), "frame"),
        True,
    )

    def gripper(value: float) -> Callable[[], None]:
        from vla_ros.msg import GripperCommand

        def send() -> None:
            msg = GripperCommand(position=value)
            msg.header.stamp = w.node.get_clock().now().to_msg()
            w.gripper_pub.publish(msg)

        return send

    case("controller: gripper position NaN", lambda: c("gripper_commands_refused", gripper(nan), "gripper"))
    case("controller: end-effector pose NaN", lambda: s.stale_pose("nan"))
    case("controller: end-effector pose stops", lambda: s.stale_pose("off"))
    case("controller: publisher killed mid-stream", s.watchdog_after_kill, True)
    case("controller: e-stop across publisher restart", s.estop_across_restart)
    case("controller: reset_estop while engaged", s.reset_while_engaged)
    if flood:
        case("controller: 1 kHz flood of NaN/inf/1e308", lambda: s.flood(flood_seconds))

    # policy_node: frames
    r = s.policy_refuses
    ok = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    case("policy: encoding '32FC1'", lambda: r(lambda: w.image(encoding="32FC1"), says="encoding"), True)
    case("policy: encoding ''", lambda: r(lambda: w.image(encoding=""), says="encoding"))
    case("policy: step < width*3", lambda: r(lambda: w.image(step=7), says="step"))
    case("policy: empty data", lambda: r(lambda: w.image(data=b""), says="empty"))
    case("policy: data one row short", lambda: r(lambda: w.image(data=ok[:-1].tobytes()), says="bytes"))
    case(
        "policy: claims 100000x100000",
        lambda: r(lambda: w.image(height=100_000, width=100_000, step=300_000), says="pixels"),
        True,
    )
    case("policy: height 0", lambda: r(lambda: w.image(height=0, data=b""), says="height"))
    case("policy: compressed garbage", lambda: r(lambda: w.compressed(b"\x89PNG garbage"), says="PNG"))
    case("policy: compressed 'tiff'", lambda: r(lambda: w.compressed(b"II*\x00", "tiff"), says="tiff"))
    png = _png_bytes(ok)
    case(
        "policy: compressed PNG truncated", lambda: r(lambda: w.compressed(png[: len(png) // 2]), says="PNG")
    )
    bomb = _png_bytes(None, Image.new("1", (10000, 10000)))
    case("policy: compressed PNG 10000x10000", lambda: r(lambda: w.compressed(bomb), says="pixels"))
    case("policy: frame 10 s old", lambda: r(lambda: w.image(ok, age_s=10.0), "frames_refused_stale"))
    case(
        "policy: frame 10 s ahead", lambda: r(lambda: w.image(ok, age_s=-10.0), "frames_refused_stale"), True
    )
    case("policy: frame stamp zero", lambda: r(lambda: w.image(ok, age_s=w.now()), "frames_refused_stale"))
    # policy_node: valid frames in other encodings
    case(
        "policy: bgr8 frame with row padding",
        lambda: s.policy_acts(
            lambda: w.image(
                data=np.pad(ok[..., ::-1], ((0, 0), (0, 4), (0, 0)))
                .reshape(64, -1)[:, : 64 * 3 + 12]
                .tobytes(),
                encoding="bgr8",
                step=64 * 3 + 12,
            )
        ),
    )
    case(
        "policy: mono8 frame",
        lambda: s.policy_acts(lambda: w.image(data=ok[..., 0].tobytes(), encoding="mono8", step=64)),
    )
    grey16 = (ok[..., 0].astype(np.uint16) * 257).astype(">u2")
    case(
        "policy: mono16 big-endian frame",
        lambda: s.policy_acts(
            lambda: w.image(data=grey16.tobytes(), encoding="mono16", step=128, is_bigendian=1)
        ),
    )
    case(
        "policy: yuv422 frame",
        lambda: s.policy_acts(lambda: w.image(data=ok[..., :2].tobytes(), encoding="yuv422", step=128)),
    )
    case(
        "policy: bayer_rggb8 frame",
        lambda: s.policy_acts(
            lambda: w.image(data=ok[..., 0].tobytes(), encoding="bayer_rggb8", step=64), 5.0
        ),
    )
    # policy_node: instructions
    case("policy: empty instruction", lambda: s.policy_instruction_refused(""), True)
    case("policy: 10000-character instruction", lambda: s.policy_instruction_refused("x" * 10_000))
    case("policy: control characters only", lambda: s.policy_instruction_refused("\x00\x01\x1b\x7f"))

    def control_inside() -> Result:
        w.say("pick\x07 up the\x1b red gear")
        values = w.wait_diag(
            "policy_node: policy", lambda v: v.get("instruction") == "pick up the red gear", 5.0
        )
        result = s.policy_acts(lambda: w.image())
        s.good_instruction()
        if values is None and result.outcome == "survived":
            return Result("silent acceptance", "acted on an instruction with control characters in it")
        return result

    case("policy: control characters inside", control_inside)
    case("policy: Instruction action 'stop'", s.policy_stop_instruction)
    case("policy: a good frame after all that", lambda: s.policy_acts(lambda: w.image()), True)
    if not quick:
        case("policy: checkpoint shard truncated", s.broken_model)

    # disambiguation_node
    case("disambiguation: empty text", lambda: s.operator_refused(""), True)
    case("disambiguation: 100 kB text", lambda: s.operator_refused("put it in the bin " * 6000))
    case("disambiguation: control characters only", lambda: s.operator_refused("\x00\x01\x1b[2J"))
    case(
        "disambiguation: 'stop' inside 100 kB",
        lambda: s.operator_answered("la " * 20000 + " stop", expect="estop"),
    )
    case(
        "disambiguation: answer, no question pending", lambda: s.operator_answered("the red one", answer=True)
    )

    def nan_position(msg) -> None:
        msg.objects[0].position.y = math.nan

    def duplicate(msg) -> None:
        msg.objects = [msg.objects[0], msg.objects[0]]

    case("disambiguation: scene position NaN", lambda: s.bad_scene(nan_position), True)
    case("disambiguation: scene duplicate ids", lambda: s.bad_scene(duplicate))
    return cases


def _png_bytes(rgb: np.ndarray | None, image=None) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    (image if image is not None else Image.fromarray(rgb)).save(out, format="PNG")
    return out.getvalue()


def launch_nodes(paths: dict[str, Path], quick: bool) -> NodeSuite:
    """The node processes, on a private domain id (set for this process too)."""
    os.environ["ROS_DOMAIN_ID"] = str(_free_domain(exclude=set()))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    logs = paths["model"].parent / "node_logs"
    logs.mkdir(exist_ok=True)
    suite = NodeSuite(paths, logs)
    suite.launch(quick)
    return suite


def run_node_cases(
    suite: NodeSuite, rows: list[Row], m: Measurements, quick: bool, flood: bool, flood_seconds: float
) -> None:
    import rclpy
    from bench_controller_flood import spinning

    context = rclpy.Context()
    rclpy.init(context=context)
    world = World(context)
    suite.world = world
    try:
        with spinning(context, world.node):
            try:
                start = time.monotonic()
                suite.wait_ready()
                print(f"nodes ready after another {time.monotonic() - start:.1f} s", file=sys.stderr)
                suite.good_instruction()
                t0 = world.now()
                cases = node_cases(suite, quick, flood, flood_seconds)
                run_cases([c for c in cases if c.quick] if quick else cases, rows)
                stamps = np.sort([t for t, _ in world.outputs_since(t0)])
                if stamps.size > 1:
                    gaps = np.diff(stamps)
                    suite.m.largest_gap_periods = float(gaps.max() * OUTPUT_RATE_HZ)
                    at = stamps[int(np.argmax(gaps))]
                    during = [r.name for r in rows if r.area == "node" and r.started <= at]
                    suite.m.extra["largest output gap began during"] = during[-1] if during else "start-up"
                    suite.m.extra["output gaps over 2 periods"] = int(np.sum(gaps > 2.0 / OUTPUT_RATE_HZ))
            finally:
                suite.stop()
    finally:
        world.node.destroy_node()
        rclpy.try_shutdown(context=context)
    for key in (
        "watchdog_latency_s",
        "largest_gap_periods",
        "flood_largest_gap_periods",
        "flood_watchdog_latency_s",
    ):
        setattr(m, key, getattr(suite.m, key))
    m.extra.update(suite.m.extra)


# ----------------------------------------------------------------------------------------------------
# Running and printing


def run_cases(cases: list[Case], rows: list[Row], progress: bool = True) -> None:
    for case in cases:
        start, started = time.monotonic(), time.time()
        try:
            result = case.run()
        except Exception as exc:  # a fault of this benchmark, not of the code under test
            result = Result("crash", f"benchmark error: {type(exc).__name__}: {exc}")
        seconds = time.monotonic() - start
        rows.append(Row(case.area, case.name, result.outcome, _one_line(result.detail), seconds, started))
        if progress:
            r = rows[-1]
            print(f"  [{len(rows):3d}] {r.area:6s} {r.outcome:17s} {r.name}", file=sys.stderr, flush=True)


def print_table(rows: list[Row], m: Measurements) -> None:
    name_w = max(len(r.name) for r in rows)
    print(f"{'#':>3s}  {'area':6s} {'input':{name_w}s}  {'outcome':17s} {'s':>5s}  detail")
    for i, r in enumerate(rows, 1):
        print(f"{i:3d}  {r.area:6s} {r.name:{name_w}s}  {r.outcome:17s} {r.seconds:5.1f}  {r.detail}")
    counts = Counter(r.outcome for r in rows)
    print()
    print(f"{len(rows)} inputs: " + ", ".join(f"{counts.get(o, 0)} {o}" for o in OUTCOMES))
    if math.isnan(m.watchdog_latency_s) and math.isnan(m.largest_gap_periods):
        return  # no node cases
    print(
        f"controller watchdog latency (publisher killed -> first zero output): {m.watchdog_latency_s:.3f} s "
        "(command_timeout_s 0.5); largest output gap during the node cases: "
        f"{m.largest_gap_periods:.2f} periods"
    )
    if not math.isnan(m.flood_largest_gap_periods):
        print(
            f"1 kHz flood (bench_controller_flood): largest output gap {m.flood_largest_gap_periods:.2f} "
            f"periods (target <= 2), watchdog latency after it {m.flood_watchdog_latency_s:.3f} s"
        )
    for key, value in m.extra.items():
        print(f"{key}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the subset test/test_faults.py runs")
    parser.add_argument("--only", choices=("cli", "loader", "node"), action="append", help="areas to run")
    parser.add_argument("--fresh-processes", action="store_true", help="each CLI case its own process")
    parser.add_argument("--no-flood", action="store_true", help="skip the 1 kHz flood measurement")
    parser.add_argument("--flood-seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None, help="also write rows and measurements here")
    parser.add_argument("--keep", type=Path, default=None, help="build the inputs here and keep them")
    parser.add_argument(
        "--role", choices=("bench", "commands", "estop"), default="bench", help=argparse.SUPPRESS
    )
    parser.add_argument("--rate-hz", type=float, default=20.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role != "bench":
        return _child_role(args)
    areas = set(args.only or ("cli", "loader", "node"))

    # Heavy imports first, so that forked children start warm; no torch op runs here before forking.
    import vla_ros.cli
    import vla_ros.policy.runtime

    vla_ros.cli.build_parser()
    root = args.keep or Path(tempfile.mkdtemp(prefix="vla_faults_"))
    root.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    m = Measurements()
    suite = None
    try:
        start = time.monotonic()
        paths = build_inputs(root)
        print(f"inputs built in {time.monotonic() - start:.1f} s under {root}", file=sys.stderr)
        if "node" in areas:
            suite = launch_nodes(paths, args.quick)
        cases: list[Case] = []
        if "cli" in areas:
            cases += cli_cases(paths, args.fresh_processes)
        if "loader" in areas:
            cases += loader_cases(paths)
        if args.quick:
            cases = [c for c in cases if c.quick]
        run_cases(cases, rows)
        if "node" in areas:
            # --quick leaves the flood to test_nodes_controller.py's own flood test.
            flood = not (args.no_flood or args.quick)
            run_node_cases(suite, rows, m, quick=args.quick, flood=flood, flood_seconds=args.flood_seconds)
    finally:
        if suite is not None:
            suite.stop()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print_table(rows, m)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": [vars(r) for r in rows],
                    "counts": dict(Counter(r.outcome for r in rows)),
                    "measurements": {k: v for k, v in vars(m).items()},
                },
                indent=1,
                default=str,
            )
        )
    return 1 if any(r.outcome in BAD_OUTCOMES for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
