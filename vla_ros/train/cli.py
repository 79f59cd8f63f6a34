"""``vla-ros record-demos``, ``vla-ros train``, ``vla-ros export-run`` and ``vla-ros sim-eval``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vla_ros.data.cli import add_topic_arguments
from vla_ros.data.dataset import CleaningConfig
from vla_ros.model.adapters import DEFAULT_LORA_RANK
from vla_ros.sim import MAX_EPISODE_STEPS, TASK_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    rec = subparsers.add_parser(
        "record-demos",
        help="record scripted-expert demonstrations in the embedded workcell as rosbag2 (one per episode)",
    )
    rec.add_argument("out_dir", type=Path)
    rec.add_argument("--task", nargs="+", choices=TASK_NAMES, default=["pick_place"])
    rec.add_argument("--episodes", type=int, default=10, help="episodes per task")
    rec.add_argument("--seed-start", type=int, default=0, help="first layout seed (evaluate on others)")
    rec.add_argument("--image-size", type=int, default=224, help="camera width and height in pixels")
    rec.add_argument("--max-steps", type=int, default=MAX_EPISODE_STEPS)
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
    _add_parts_argument(rec)
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
        description="Trains an OpenVLA policy on demonstration bags. See vla_ros/train/bc.py for the recipe, "
        "the output layout and multi-GPU use (torchrun / accelerate launch -m vla_ros.train.bc).",
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

    ev = subparsers.add_parser(
        "sim-eval",
        help="closed-loop success rate of a policy in the workcell on held-out layouts, with bounds",
    )
    ev.add_argument("--model", type=Path, required=True, help="checkpoint directory (official layout)")
    ev.add_argument("--adapter", type=Path, default=None, help="LoRA adapter directory on top of --model")
    ev.add_argument("--task", nargs="+", choices=TASK_NAMES, default=["pick_place"])
    ev.add_argument("--episodes", type=int, default=20, help="episodes per task")
    ev.add_argument("--seed-start", type=int, default=100000, help="first seed: keep clear of demo seeds")
    ev.add_argument("--image-size", type=int, default=224, help="camera size (as recorded)")
    ev.add_argument("--max-steps", type=int, default=MAX_EPISODE_STEPS)
    ev.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ev.add_argument("--unnorm-key", default=None)
    ev.add_argument("--no-expert", action="store_true", help="skip the scripted-expert bound")
    ev.add_argument("--no-untrained", action="store_true", help="skip the untrained-model bound")
    ev.add_argument(
        "--untrained-episodes", type=int, default=None, help="episodes per task for the untrained bound"
    )
    ev.add_argument("--num-threads", type=int, default=None)
    ev.add_argument("--report", type=Path, default=None, help="write the results as JSON here")
    _add_parts_argument(ev)
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(func=run_sim_eval)


def _add_parts_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--parts",
        type=int,
        nargs="+",
        metavar="N",
        default=None,
        help="parts per layout: N, or a range LOW HIGH (default 2 3). One part needs no name to be found: "
        "a curriculum step, and a test of whether a policy can find a part at all",
    )


def _parts_range(parts: list[int] | None) -> tuple[int, int] | None:
    if parts is None:
        return None
    if len(parts) > 2:
        raise SystemExit(f"--parts takes N or LOW HIGH, got {len(parts)} numbers")
    return (parts[0], parts[-1])


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bags", type=Path, nargs="+", required=True, help="bags or directories of bags")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--base", type=Path, help="checkpoint directory to fine-tune (official layout)")
    src.add_argument("--init", choices=["tiny", "small"], help="train a fresh small OpenVLA from scratch")
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="backbone input size: of an --init model (default 224), or to fine-tune --base at a new size "
        "(full mode; position embeddings are resampled; default: the base's own)",
    )
    p.add_argument(
        "--add-sincos-position",
        action="store_true",
        help="--base, full mode: add fixed 2-D sin-cos patterns to both ViTs' position embeddings before "
        "training, so the backbone says where each patch is (for models trained from --init tiny)",
    )
    p.add_argument(
        "--init-override",
        action="append",
        metavar="FIELD=N",
        help="change a size of the --init preset (TinySpec field, e.g. llm_num_layers=3); repeatable",
    )
    p.add_argument("--mode", choices=["full", "lora", "qlora"], default="full")
    p.add_argument("--lora-rank", type=int, default=DEFAULT_LORA_RANK, help="LoRA r (alpha = min(r, 16))")
    p.add_argument("--out", type=Path, required=True, help="run directory (outputs, resume state)")
    p.add_argument("--checkpoint-out", type=Path, default=None, help="full mode: checkpoint directory")
    p.add_argument("--export-merged", action="store_true", help="lora/qlora: also write base+adapter merged")
    p.add_argument("--save-dtype", choices=["bf16", "fp32", "fp16"], default="bf16")
    p.add_argument("--dataset-name", default="sim_workcell", help="key of dataset_statistics.json")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=None, help="optimiser steps (overrides --epochs)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--no-random-crop", action="store_true", help="train on centre crops only")
    p.add_argument(
        "--mirror-augment",
        action="store_true",
        help="see half the steps mirrored left-right (image, dy/droll/dyaw, left/right words); only for a "
        "camera in the base's xz-plane looking along x, like the simulated workcell's",
    )
    p.add_argument(
        "--bin-smoothing",
        type=float,
        default=0.0,
        help="spread each action token's target over neighbouring bins (Gaussian width in bins); "
        "0 = upstream's exact-bin cross-entropy",
    )
    p.add_argument(
        "--patch-position-weight",
        type=float,
        default=0.0,
        help="also train each projector output token to tell its own patch row and column, with this "
        "loss weight; for --init models, whose patch tokens otherwise do not say where they are "
        "(benchmarks/probe_patch_positions.py). The head is not exported. 0 = off",
    )
    p.add_argument(
        "--target-attention-weight",
        type=float,
        default=0.0,
        help="also ask heads of the language model's last layer, where they predict the action, to look "
        "at the image patches showing the part or place the step heads for, with this loss weight. Needs "
        "bags with target masks (record-demos writes them on --target-mask-topic). 0 = off",
    )
    p.add_argument(
        "--target-attention-heads",
        type=int,
        default=1,
        help="how many of the last layer's heads --target-attention-weight supervises (the first N)",
    )
    p.add_argument("--heldout-fraction", type=float, default=0.1)
    p.add_argument("--heldout-episodes", type=int, default=None)
    p.add_argument("--eval-max-steps", type=int, default=None, help="cap held-out steps per evaluation")
    p.add_argument("--save-every-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue from OUT/training_state")
    p.add_argument("--keep-noops", action="store_true", help="keep steps that move nothing")
    p.add_argument("--outlier-iqr-k", type=float, default=CleaningConfig.outlier_iqr_k, help="0 disables")
    p.add_argument("--no-progress", action="store_true")
    add_topic_arguments(p)


def run_record(args: argparse.Namespace) -> int:
    from vla_ros.train.record import record_demonstrations

    learner_factory = None
    if args.dagger_model is not None:
        import torch

        from vla_ros.train.evaluate_closed_loop import vla_policy_factory

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
            num_parts=_parts_range(args.parts),
            wrist_camera=args.wrist_camera,
        )
    except ValueError as exc:
        raise SystemExit(f"record-demos: {exc}") from exc
    print(summary.summary())
    return 0


def run_train(args: argparse.Namespace) -> int:
    from vla_ros.data.bag import BagError
    from vla_ros.data.dataset import DatasetError
    from vla_ros.model.loading import CheckpointError
    from vla_ros.train.bc import TrainingError, config_from_args, train

    try:
        result = train(config_from_args(args), resume=args.resume)
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
    from vla_ros.train.bc import TrainingError, export_resume_point

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


def run_sim_eval(args: argparse.Namespace) -> int:
    import torch

    from vla_ros.train.evaluate_closed_loop import (
        evaluate_in_workcell,
        expert_factory,
        format_table,
        vla_policy_factory,
    )

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    common = dict(
        tasks=args.task,
        episodes=args.episodes,
        seed_start=args.seed_start,
        image_size_px=args.image_size,
        max_steps=args.max_steps,
        progress=not args.no_progress,
        num_parts=_parts_range(args.parts),
    )
    results = []
    if not args.no_expert:
        results += evaluate_in_workcell(expert_factory, "expert", render=False, **common)
    factory = vla_policy_factory(args.model, args.adapter, args.precision, args.unnorm_key)
    results += evaluate_in_workcell(factory, "trained", **common)
    if not args.no_untrained:
        untrained = vla_policy_factory(args.model, None, args.precision, args.unnorm_key, untrained=True)
        if args.untrained_episodes is not None:
            common["episodes"] = args.untrained_episodes
        results += evaluate_in_workcell(untrained, "untrained", **common)
    print(format_table(results))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    return 0
