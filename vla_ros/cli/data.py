"""``vla-ros dataset-stats``: read and clean demonstration bags, report, write dataset_statistics.json."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vla_ros.data.bag import BagError
from vla_ros.data.dataset import (
    ACTION_SOURCES,
    CleaningConfig,
    DatasetError,
    SyncConfig,
    TopicConfig,
    load_episodes,
    write_dataset_statistics,
)


def add_topic_arguments(parser: argparse.ArgumentParser) -> None:
    """Topic, synchronisation and cleaning options shared with the dataset tools."""
    d = TopicConfig()
    g = parser.add_argument_group("topics and synchronisation")
    g.add_argument("--camera-topic", default=d.camera, help="sensor_msgs/Image or CompressedImage topic")
    g.add_argument(
        "--instruction-topic",
        default=d.instruction,
        help="vla_ros/Instruction or std_msgs/String topic; '' to use the ActionStep's instruction field",
    )
    g.add_argument(
        "--instruction", default=None, help="use this instruction for every step instead of a topic"
    )
    g.add_argument("--action-source", choices=ACTION_SOURCES, default=d.action_source)
    g.add_argument(
        "--action-topic", default=d.action_step, help="vla_ros/ActionStep topic (action_step source)"
    )
    g.add_argument("--twist-topic", default=d.twist, help="TwistStamped teleop topic (twist source)")
    g.add_argument(
        "--ee-pose-topic", default=d.ee_pose, help="PoseStamped end-effector topic (ee_pose source)"
    )
    g.add_argument(
        "--gripper-topic",
        default=d.gripper,
        help="GripperCommand topic for twist/ee_pose sources; '' for none",
    )
    g.add_argument(
        "--target-mask-topic",
        default=None,
        help="also read per-frame masks of what each step heads for from this image topic (record-demos "
        "writes them on /vla/target_mask; train --target-attention-weight reads that one by default)",
    )
    g.add_argument(
        "--wrist-camera-topic",
        default=None,
        help="a second camera (e.g. gripper-mounted; record-demos --wrist-camera writes "
        "/camera/wrist/image_raw): each step also gets its newest frame, and train makes a two-view model",
    )
    g.add_argument("--control-rate-hz", type=float, default=SyncConfig.control_rate_hz)
    g.add_argument("--split-on-instruction-change", action="store_true")
    g.add_argument(
        "--split-gap-s", type=float, default=None, help="start a new episode after a pause this long"
    )
    g.add_argument(
        "--gripper-closed-is-one",
        action="store_true",
        help="the recording uses 1 = closed (flipped to 1 = open)",
    )


def topics_from_args(args: argparse.Namespace) -> TopicConfig:
    return TopicConfig(
        camera=args.camera_topic,
        instruction=args.instruction_topic or None,
        action_source=args.action_source,
        action_step=args.action_topic,
        twist=args.twist_topic,
        ee_pose=args.ee_pose_topic,
        gripper=args.gripper_topic or None,
        target_mask=args.target_mask_topic or None,
        extra_cameras=(args.wrist_camera_topic,) if args.wrist_camera_topic else (),
    )


def sync_from_args(args: argparse.Namespace) -> SyncConfig:
    flip = args.gripper_closed_is_one
    return SyncConfig(
        control_rate_hz=args.control_rate_hz,
        split_on_instruction_change=args.split_on_instruction_change,
        split_gap_s=args.split_gap_s,
        fixed_instruction=args.instruction,
        gripper_open_value=0.0 if flip else 1.0,
        gripper_closed_value=1.0 if flip else 0.0,
    )


def run_dataset_stats(args: argparse.Namespace) -> int:
    cleaning = CleaningConfig(
        drop_noop_steps=not args.keep_noops,
        min_steps=args.min_steps,
        outlier_iqr_k=None if args.outlier_iqr_k <= 0 else args.outlier_iqr_k,
        outlier_policy="report" if args.keep_outliers else "drop",
    )
    try:
        episodes, report = load_episodes(
            args.bags, topics_from_args(args), sync_from_args(args), cleaning, progress=not args.no_progress
        )
        path = write_dataset_statistics(args.out, args.dataset_name, episodes)
    except (BagError, DatasetError) as exc:
        print(f"dataset-stats: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    report_path = path.with_name("cleaning_report.json")
    report_path.write_text(json.dumps(report.to_dict(), indent=2))
    print(f"statistics: {path}\ncleaning report: {report_path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dataset-stats",
        help="clean demonstration bags and write dataset_statistics.json (OpenVLA layout)",
        description="Reads the bags as training would, reports what cleaning removed and why, and writes "
        "normalisation statistics keyed by --dataset-name.",
    )
    p.add_argument("bags", nargs="+", type=Path, metavar="BAG")
    p.add_argument("--dataset-name", required=True, help="key of the statistics (the policy's --unnorm-key)")
    p.add_argument("--out", type=Path, default=Path("."), help="directory (or .json file) to write to")
    p.add_argument("--keep-noops", action="store_true", help="keep steps that move nothing")
    p.add_argument("--keep-outliers", action="store_true", help="only report outlier episodes")
    p.add_argument("--min-steps", type=int, default=CleaningConfig.min_steps)
    p.add_argument(
        "--outlier-iqr-k",
        type=float,
        default=CleaningConfig.outlier_iqr_k,
        help="0 disables outlier detection",
    )
    p.add_argument("--no-progress", action="store_true")
    add_topic_arguments(p)
    p.set_defaults(func=run_dataset_stats)
