"""``vla-ros record-demos``, ``vla-ros train`` and ``vla-ros export-run``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vla_ros.cli.arguments import positive_int
from vla_ros.cli.data import add_topic_arguments
from vla_ros.cli.sim import add_parts_argument, parts_range
from vla_ros.data.dataset import CleaningConfig
from vla_ros.sim import MAX_EPISODE_STEPS, TASK_NAMES
from vla_ros.train.config import TrainingError, add_config_arguments, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    rec = subparsers.add_parser(
        "record-demos",
        help="record scripted-expert demonstrations in the embedded workcell as rosbag2 (one per episode)",
    )
    rec.add_argument("out_dir", type=Path)
    rec.add_argument("--task", nargs="+", choices=TASK_NAMES, default=["pick_place"])
    rec.add_argument("--episodes", type=positive_int, default=10, help="episodes per task")
    rec.add_argument("--seed-start", type=int, default=0, help="first layout seed (evaluate on others)")
    rec.add_argument("--image-size", type=int, default=224, help="camera width and height in pixels")
    rec.add_argument("--max-steps", type=positive_int, default=MAX_EPISODE_STEPS)
    rec.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    rec.add_argument("--keep-failures", action="store_true", help="also write episodes the expert failed")
    rec.add_argument(
        "--dagger-model",
        type=Path,
        default=None,
        help="DAgger: this trained checkpoint drives the arm and the expert labels every step",
    )
    rec.add_argument(
        "--dagger-beta", type=float, default=0.0, help="DAgger: probability the expert drives a step instead"
    )
    rec.add_argument("--num-threads", type=int, default=None, help="torch threads for the DAgger model")
    rec.add_argument(
        "--random-start",
        action="store_true",
        help="start each episode with the arm at a random place above the table (seeded by the layout), "
        "not home: the arm's position then no longer tells the way to the target",
    )
    add_parts_argument(rec)
    rec.add_argument(
        "--wrist-camera",
        action="store_true",
        help="also record the gripper-mounted camera (/camera/wrist/image_raw), for two-view training",
    )
    rec.add_argument("--no-progress", action="store_true")
    rec.set_defaults(func=run_record)

    tr = subparsers.add_parser(
        "train",
        help="behaviour cloning from bags: full, LoRA or QLoRA (cross-entropy on action tokens)",
        description="Trains an OpenVLA policy on demonstration bags. See vla_ros/train/loop.py for the "
        "recipe, "
        "the output layout and multi-GPU use (torchrun -m vla_ros.cli train ...).",
    )
    add_train_arguments(tr)
    tr.set_defaults(func=run_train)

    ex = subparsers.add_parser(
        "export-run",
        help="export a training run's latest resume point as a checkpoint (full) or adapter (LoRA), "
        "e.g. to evaluate a run that is still training",
    )
    ex.add_argument("run_dir", type=Path, help="the --out directory of a vla-ros train run")
    ex.add_argument("--dest", type=Path, default=None, help="where to write (default RUN_DIR/step<N>)")
    ex.add_argument("--num-threads", type=int, default=None, help="torch threads (default: torch's)")
    ex.set_defaults(func=run_export)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Every TrainConfig option (see vla_ros.train.config), resuming, cleaning and the bags' topics."""
    add_config_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/training_state")
    p.add_argument("--keep-noops", action="store_true", help="keep steps that move nothing")
    p.add_argument("--outlier-iqr-k", type=float, default=CleaningConfig.outlier_iqr_k, help="0 disables")
    add_topic_arguments(p)


def run_record(args: argparse.Namespace) -> int:
    from vla_ros.train.record import record_demonstrations

    learner_factory = None
    if args.dagger_model is not None:
        import torch

        from vla_ros.eval.closed_loop import vla_policy_factory

        if args.num_threads:
            torch.set_num_threads(args.num_threads)
        learner_factory = vla_policy_factory(args.dagger_model)
    try:
        summary = record_demonstrations(
            args.out_dir,
            tasks=args.task,
            episodes=args.episodes,
            seed_start=args.seed_start,
            image_size_px=args.image_size,
            max_steps=args.max_steps,
            storage=args.storage,
            keep_failures=args.keep_failures,
            progress=not args.no_progress,
            learner_factory=learner_factory,
            beta=args.dagger_beta,
            random_start=args.random_start,
            num_parts=parts_range(args.parts),
            wrist_camera=args.wrist_camera,
        )
    except ValueError as exc:
        raise SystemExit(f"record-demos: {exc}") from exc
    print(summary.summary())
    return 0


def run_train(args: argparse.Namespace) -> int:
    from vla_ros.cli.data import sync_from_args, topics_from_args
    from vla_ros.data.bag import BagError
    from vla_ros.data.dataset import DatasetError
    from vla_ros.model.loading import CheckpointError
    from vla_ros.train.loop import train

    cleaning = CleaningConfig(
        drop_noop_steps=not args.keep_noops,
        outlier_iqr_k=None if args.outlier_iqr_k <= 0 else args.outlier_iqr_k,
    )
    try:
        config = config_from_args(args, topics_from_args(args), sync_from_args(args), cleaning)
        result = train(config, resume=args.resume)
    except (TrainingError, DatasetError, BagError, CheckpointError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    print(
        f"{'interrupted' if result.interrupted else 'finished'} at step {result.step}/{result.total_steps} "
        f"in {result.wall_time_s:.0f} s; outputs: {', '.join(str(p) for p in result.outputs)}"
    )
    return 130 if result.interrupted else 0


def run_export(args: argparse.Namespace) -> int:
    from vla_ros.model.loading import CheckpointError
    from vla_ros.train.checkpoints import export_resume_point

    if args.num_threads:
        import torch

        torch.set_num_threads(args.num_threads)
    try:
        step, written = export_resume_point(args.run_dir, args.dest)
    except (TrainingError, CheckpointError) as exc:
        print(f"export-run: {exc}", file=sys.stderr)
        return 2
    print(f"exported step {step} of {args.run_dir}: {', '.join(str(p) for p in written)}")
    return 0
