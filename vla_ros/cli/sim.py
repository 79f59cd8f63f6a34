"""``vla-ros sim``: closed-loop episodes in the embedded workcell, all stages as ROS nodes in one process."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vla_ros.cli.arguments import positive_float, positive_int
from vla_ros.cli.model import add_center_crop_argument, require_checkpoint_dir
from vla_ros.errors import UserInputError
from vla_ros.model.options import DEFAULT_PRECISION, PRECISION_CHOICES, PRECISION_HELP
from vla_ros.sim.tasks import TASK_NAMES

STORAGES = ("mcap", "sqlite3")


def register(subparsers: argparse._SubParsersAction) -> None:
    sim = subparsers.add_parser(
        "sim",
        help="run episodes in the simulated workcell: operator words -> disambiguation -> policy -> "
        "controller -> sim, as ROS nodes with use_sim_time",
        description="Closed-loop episodes in the embedded PyBullet workcell. Every stage is the real ROS "
        "node (one process, MultiThreadedExecutor, sim time from the workcell's /clock). Reports success, "
        "policy steps, policy rate (steps per sim second) and wall time per episode.",
    )
    sim.add_argument("--task", choices=TASK_NAMES, default="pick_place")
    sim.add_argument("--episodes", type=positive_int, default=1)
    sim.add_argument("--seed", type=int, default=0, help="layout seed of the first episode (then +1 each)")
    sim.add_argument(
        "--policy",
        choices=("expert", "model"),
        default="expert",
        help="expert: the scripted expert (privileged state); model: an OpenVLA checkpoint (--model)",
    )
    sim.add_argument("--model", type=Path, default=None, help="OpenVLA checkpoint directory (--policy model)")
    sim.add_argument("--device", default="cpu", help="device for --policy model (cpu, cuda)")
    sim.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default=DEFAULT_PRECISION,
        help=f"--policy model: {PRECISION_HELP}",
    )
    sim.add_argument(
        "--quantization",
        choices=("none", "8bit", "4bit"),
        default="none",
        help="run --policy model quantized with bitsandbytes (4bit = NF4)",
    )
    add_center_crop_argument(sim)
    sim.add_argument(
        "--operator-text",
        default=None,
        help="what the operator says (default: the episode's own instruction from the sim's reset)",
    )
    sim.add_argument("--record", type=Path, default=None, help="write each episode as a rosbag2 under DIR")
    sim.add_argument("--storage", choices=STORAGES, default="mcap")
    sim.add_argument(
        "--gif",
        type=Path,
        default=None,
        help="write what the camera saw: a GIF (.gif) or a picture strip (.png); one per episode "
        "(_000, _001, ... appended when there are several)",
    )
    sim.add_argument(
        "--real-time-factor", type=positive_float, default=1.0, help="sim seconds per wall second"
    )
    sim.add_argument(
        "--max-steps", type=positive_int, default=90, help="policy steps before an episode is failed"
    )
    sim.set_defaults(func=run)


def _numbered(path: Path, index: int, count: int) -> Path:
    return path if count == 1 else path.with_name(f"{path.stem}_{index:03d}{path.suffix}")


def run(args: argparse.Namespace) -> int:
    if args.policy == "model" and args.model is None:
        print("--policy model needs --model DIR (an OpenVLA checkpoint directory)", file=sys.stderr)
        return 2
    if args.policy == "model":
        require_checkpoint_dir(args.model)  # before the simulator and the nodes start
    if args.operator_text is not None and not args.operator_text.strip():
        raise UserInputError("--operator-text is empty: say what the operator asks for, or leave it out")
    if args.record is not None and args.record.exists() and not args.record.is_dir():
        raise UserInputError(f"--record {args.record} is a file; bags are written into a directory")
    if args.record is not None:
        existing = [
            args.record / f"episode_{i:03d}"
            for i in range(args.episodes)
            if (args.record / f"episode_{i:03d}").exists()
        ]
        if existing:
            print(
                f"{existing[0]} exists already (bags are never overwritten): choose another --record "
                "directory or delete the old one",
                file=sys.stderr,
            )
            return 2
        args.record.mkdir(parents=True, exist_ok=True)

    from vla_ros.nodes.closed_loop import ClosedLoop, ClosedLoopOptions
    from vla_ros.sim.closed_loop import format_report_table, save_pictures

    options = ClosedLoopOptions(
        policy=args.policy,
        model_dir=str(args.model or ""),
        device=args.device,
        precision=args.precision,
        center_crop=args.center_crop,
        quantization=args.quantization,
        real_time_factor=args.real_time_factor,
        max_steps=args.max_steps,
        keep_frames=args.gif is not None or args.record is not None,
    )
    reports = []
    with ClosedLoop(options, task=args.task, seed=args.seed) as loop:
        print(f"policy: {loop.policy_label}")
        print("disambiguation: DisambiguationNode (config/disambiguation.yaml)")
        for i in range(args.episodes):
            bag = args.record / f"episode_{i:03d}" if args.record is not None else None
            report, recording = loop.run_episode(
                i, args.seed + i, args.task, args.operator_text, bag_path=bag, storage=args.storage
            )
            pictures = []
            if bag is not None and recording.frames:
                pictures.append(save_pictures(recording.frames, args.record / f"episode_{i:03d}_strip.png"))
            if args.gif is not None and recording.frames:
                pictures.append(save_pictures(recording.frames, _numbered(args.gif, i, args.episodes)))
            report.picture_path = ", ".join(map(str, pictures))
            reports.append(report)
            outcome = "success" if report.success else f"no success ({report.resolution})"
            print(
                f"episode {i} seed {report.seed} {report.task}: {outcome} in {report.steps} steps, "
                f"{report.wall_time_s:.1f} s wall"
                + (f"; bag {bag}" if bag else "")
                + (f"; pictures {report.picture_path}" if pictures else "")
            )
    print(format_report_table(reports))
    print(f"policy: {loop.policy_label}")
    return 0


def add_parts_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--parts",
        type=int,
        nargs="+",
        metavar="N",
        default=None,
        help="parts per layout: N, or a range LOW HIGH (default 2 3). One part needs no name to be found: "
        "a curriculum step, and a test of whether a policy can find a part at all",
    )


def parts_range(parts: list[int] | None) -> tuple[int, int] | None:
    if parts is None:
        return None
    if len(parts) > 2:
        raise SystemExit(f"--parts takes N or LOW HIGH, got {len(parts)} numbers")
    return (parts[0], parts[-1])
