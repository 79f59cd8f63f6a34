"""``vla-ros eval-bag`` (offline: every step through the policies, compared with the recording) and
``vla-ros replay-bag`` (live: the bag played at recorded timing into the running nodes)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from vla_ros.action import Policy
from vla_ros.cli.arguments import positive_int
from vla_ros.cli.data import add_topic_arguments, sync_from_args, topics_from_args
from vla_ros.cli.model import add_center_crop_argument
from vla_ros.cli.sim import add_parts_argument, parts_range
from vla_ros.data.bag import BagError
from vla_ros.data.dataset import CleaningConfig, DatasetError, load_episodes
from vla_ros.eval.evaluate import (
    KEEP_ALL_STEPS,
    EvalResult,
    EvaluationError,
    RecordedActionPolicy,
    evaluate_episodes,
)
from vla_ros.eval.report import format_comparison, write_report
from vla_ros.model.options import DEFAULT_PRECISION, PRECISION_CHOICES, PRECISION_HELP, resolve_precision
from vla_ros.sim import MAX_EPISODE_STEPS, TASK_NAMES

QUANTIZATIONS = ("none", "8bit", "4bit")
# Our CLI names -> the model core's names.
_RUNTIME_QUANTIZATION = {"none": "none", "8bit": "8bit", "4bit": "4bit-nf4"}


class PolicyUnavailableError(RuntimeError):
    """The OpenVLA runtime cannot be imported in this installation."""


def load_policy(args: argparse.Namespace, model_dir: str | Path, quantization: str) -> Policy:
    """The OpenVLA policy for one checkpoint directory at one quantization (imported lazily)."""
    try:
        runtime = importlib.import_module("vla_ros.policy.runtime")
    except ModuleNotFoundError as exc:
        if exc.name not in ("vla_ros.policy", "vla_ros.policy.runtime"):
            raise PolicyUnavailableError(
                f"the OpenVLA runtime needs {exc.name!r}, which is not installed: {exc}"
            ) from exc
        raise PolicyUnavailableError(
            "the OpenVLA runtime (vla_ros.policy.runtime) is not part of this installation; "
            "use --recorded to check the evaluation path without a model"
        ) from exc
    config = runtime.PolicyConfig(
        checkpoint_dir=model_dir,
        precision=args.precision,
        quantization=_RUNTIME_QUANTIZATION[quantization],
        device=args.device,
        adapter_dir=args.adapter,
        unnorm_key=args.unnorm_key,
        center_crop=args.center_crop,
    )
    return runtime.VLAPolicy(config)


def _policy_name(model_dir: str, quantization: str, args: argparse.Namespace, taken: set[str]) -> str:
    base = Path(model_dir).name or str(model_dir)
    if args.adapter:
        base += f"+{Path(args.adapter).name}"
    name = f"{base} [{args.precision if quantization == 'none' else quantization}]"
    unique, i = name, 2
    while unique in taken:
        unique, i = f"{name} #{i}", i + 1
    return unique


def run_eval_bag(args: argparse.Namespace) -> int:
    if not args.model and not args.recorded:
        print("eval-bag: give at least one --model DIR (or --recorded for a sanity check)", file=sys.stderr)
        return 2
    args.precision = resolve_precision(args.precision, args.device)  # names and report say the dtype used
    try:
        cleaning = CleaningConfig() if args.clean else KEEP_ALL_STEPS
        episodes, report = load_episodes(
            args.bags, topics_from_args(args), sync_from_args(args), cleaning, progress=not args.no_progress
        )
        print(report.summary())
        policies: dict[str, Policy] = {}
        if args.recorded:
            policies["recorded"] = RecordedActionPolicy(episodes)
        for model_dir in args.model or []:
            for quantization in args.quantization:
                name = _policy_name(model_dir, quantization, args, set(policies))
                try:
                    policies[name] = load_policy(args, model_dir, quantization)
                except PolicyUnavailableError:
                    raise
                except Exception as exc:  # any loading failure ends here, with the directory named
                    raise PolicyUnavailableError(
                        f"cannot load model {model_dir} ({quantization}): {type(exc).__name__}: {exc}"
                    ) from exc
        models = evaluate_episodes(
            episodes, policies, progress=not args.no_progress, seed=args.seed, batch_size=args.batch_size
        )
    except (BagError, DatasetError, EvaluationError, PolicyUnavailableError) as exc:
        print(f"eval-bag: {exc}", file=sys.stderr)
        return 2
    topics, sync = topics_from_args(args), sync_from_args(args)
    result = EvalResult(
        [str(b) for b in args.bags],
        episodes,
        models,
        report,
        {
            "action_source": topics.action_source,
            "camera_topic": topics.camera,
            "instruction_topic": topics.instruction,
            "control_rate_hz": sync.control_rate_hz,
            "seed": args.seed,
            "adapter": args.adapter,
            "unnorm_key": args.unnorm_key,
            "precision": args.precision,
            "quantization": list(args.quantization),
            "batch_size": args.batch_size,
        },
    )
    files = write_report(result, args.out)
    print(format_comparison(result))
    print(f"report: {files.html}\nsummary: {files.summary_json}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-bag",
        help="replay recorded bags through policies and compare with the recorded actions",
        description=(
            "Reads each bag (mcap or sqlite3), synchronises frames, instruction and recorded action, runs "
            "every policy on every step and writes summary.json, plots and report.html to --out. Several "
            "--model and --quantization values give a side-by-side comparison."
        ),
    )
    p.add_argument("bags", nargs="+", type=Path, metavar="BAG")
    p.add_argument(
        "--model", action="append", default=[], metavar="DIR", help="checkpoint directory (repeatable)"
    )
    p.add_argument(
        "--adapter", default=None, metavar="DIR", help="LoRA adapter directory applied to each model"
    )
    p.add_argument(
        "--quantization",
        nargs="+",
        choices=QUANTIZATIONS,
        default=["none"],
        help="one or more: each model is evaluated at each",
    )
    p.add_argument("--precision", choices=PRECISION_CHOICES, default=DEFAULT_PRECISION, help=PRECISION_HELP)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument(
        "--unnorm-key", default=None, metavar="K", help="dataset statistics key for un-normalisation"
    )
    p.add_argument(
        "--recorded",
        action="store_true",
        help="also evaluate a policy replaying the recorded actions (must be 0)",
    )
    p.add_argument(
        "--clean", action="store_true", help="evaluate on cleaned data (default: every recorded step)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="steps a model decodes together (same actions; faster on a GPU)",
    )
    p.add_argument("--out", type=Path, default=Path("eval_report"), metavar="DIR")
    add_center_crop_argument(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    add_topic_arguments(p)
    p.set_defaults(func=run_eval_bag)
    register_replay(subparsers)
    register_sim_eval(subparsers)
    from vla_ros.cli.study import register_study

    register_study(subparsers)


# ----------------------------------------------------------------------------------------------------------
# replay-bag


def _param_value(text: str) -> tuple[str, object]:
    """``name=value`` with the value read as YAML (``0.5``, ``true``, ``[1, 2, 3]``, ``text``)."""
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), yaml.safe_load(value)


def replay_options_from_args(args: argparse.Namespace):
    from vla_ros.eval.live import ReplayOptions

    return ReplayOptions(
        rate=args.rate,
        passes=None if args.loop else args.passes,
        namespace=args.namespace,
        camera_topic=args.camera_topic,
        wrist_camera_topic=args.wrist_camera_topic or None,
        instruction_topic=args.instruction_topic or None,
        instruction=args.instruction,
        ee_pose_topic=args.ee_pose_topic or None,
        fixed_ee_pose_m=tuple(args.fixed_ee_pose),
        action_topic=args.action_topic,
        control_period_s=args.control_period_s,
        base_frame_id=args.base_frame_id,
        settle_timeout_s=args.settle_timeout_s,
    )


def run_replay_bag(args: argparse.Namespace) -> int:
    if bool(args.model) == bool(args.actions_only):
        print("replay-bag: give either --model DIR (live replay) or --actions-only", file=sys.stderr)
        return 2
    try:
        from vla_ros.eval.live import ReplayError, write_report_json
        from vla_ros.nodes.replay import run_actions_replay, run_live_replay
    except ImportError as exc:
        print(
            f"replay-bag: needs rclpy and the built vla_ros messages ({exc}); source the colcon install "
            "space (install/setup.bash) first",
            file=sys.stderr,
        )
        return 2
    try:
        options = replay_options_from_args(args)
        controller_params = dict(args.controller_param)
        if args.actions_only:
            report = run_actions_replay(args.bag, options, controller_params=controller_params)
        else:
            policy_params = {
                "precision": args.precision,
                "quantization": args.quantization,
                "device": args.device,
                "adapter_dir": args.adapter or "",
                "unnorm_key": args.unnorm_key or "",
                **dict(args.policy_param),
            }
            report = run_live_replay(
                args.bag,
                options,
                model_dir=args.model,
                policy_params=policy_params,
                controller_params=controller_params,
            )
    except (BagError, ReplayError, ValueError) as exc:
        print(f"replay-bag: {exc}", file=sys.stderr)
        return 2
    path = write_report_json(report, args.out)
    print(report.summary())
    print(f"report: {path}")
    return 0


def register_replay(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay-bag",
        help="play a bag at recorded timing into the running policy and controller nodes",
        description=(
            "Live mode (--model): plays the bag's camera frames, instruction and end-effector poses into a "
            "real policy node and controller node (sim output) in this process, records their outputs and "
            "reports frames dropped, latency from camera stamp to twist and the rate achieved. "
            "--actions-only: plays the recorded ActionSteps into the controller and reports what its safety "
            "path changed. Header stamps are replaced by the time of publication (the nodes refuse old "
            "stamps); the original stamps are kept in the report. Writes live_replay.json or "
            "actions_replay.json to --out. Ctrl-C stops playback and still writes the report."
        ),
    )
    p.add_argument("bag", type=Path, metavar="BAG")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor (2.0 = twice as fast)")
    p.add_argument("--loop", action="store_true", help="play again and again until Ctrl-C")
    p.add_argument("--passes", type=int, default=1, metavar="N", help="play N times (ignored with --loop)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--model", default=None, metavar="DIR", help="OpenVLA checkpoint directory (live replay)"
    )
    mode.add_argument(
        "--actions-only", action="store_true", help="send the recorded actions into the controller, no model"
    )
    p.add_argument("--out", type=Path, default=Path("replay_report"), metavar="DIR")
    p.add_argument("--adapter", default=None, metavar="DIR", help="LoRA adapter directory")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default=DEFAULT_PRECISION, help=PRECISION_HELP)
    p.add_argument("--quantization", default="none", choices=("none", "8bit", "4bit", "4bit-fp4"))
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--unnorm-key", default=None, metavar="K")
    p.add_argument(
        "--policy-param",
        action="append",
        type=_param_value,
        default=[],
        metavar="NAME=VALUE",
        help="policy_node parameter, e.g. max_rate_hz=10 (repeatable)",
    )
    p.add_argument(
        "--controller-param",
        action="append",
        type=_param_value,
        default=[],
        metavar="NAME=VALUE",
        help="controller_node parameter, e.g. command_timeout_s=1.0 (repeatable)",
    )
    g = p.add_argument_group("topics")
    g.add_argument("--camera-topic", default="/camera/image_raw", help="Image or CompressedImage topic")
    g.add_argument(
        "--wrist-camera-topic",
        default=None,
        help="Image topic of a wrist camera, played onto the policy's wrist/image_raw (two-view models)",
    )
    g.add_argument(
        "--instruction-topic", default="/vla/instruction", help="Instruction or String topic; '' for none"
    )
    g.add_argument("--instruction", default=None, help="a fixed instruction instead of the bag's")
    g.add_argument(
        "--ee-pose-topic",
        default="/ee_pose",
        help="PoseStamped end-effector topic; '' (or absent from the bag): use --fixed-ee-pose",
    )
    g.add_argument("--fixed-ee-pose", type=float, nargs=3, default=[0.4, 0.0, 0.3], metavar=("X", "Y", "Z"))
    g.add_argument("--action-topic", default="/vla/action_step", help="ActionStep topic (--actions-only)")
    g.add_argument("--control-period-s", type=float, default=0.2, help="time one action step spans")
    g.add_argument("--base-frame-id", default="panda_link0", help="frame of twists and workspace")
    g.add_argument("--namespace", default="replay", help="namespace of the replay's nodes and topics")
    g.add_argument(
        "--settle-timeout-s", type=float, default=10.0, help="wait this long for the last inference"
    )
    p.set_defaults(func=run_replay_bag)


def register_sim_eval(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser(
        "sim-eval",
        help="closed-loop success rate of a policy in the workcell on held-out layouts, with bounds",
    )
    ev.add_argument("--model", type=Path, required=True, help="checkpoint directory (official layout)")
    ev.add_argument("--adapter", type=Path, default=None, help="LoRA adapter directory on top of --model")
    ev.add_argument("--task", nargs="+", choices=TASK_NAMES, default=["pick_place"])
    ev.add_argument("--episodes", type=positive_int, default=20, help="episodes per task")
    ev.add_argument("--seed-start", type=int, default=100000, help="first seed: keep clear of demo seeds")
    ev.add_argument("--image-size", type=int, default=224, help="camera size (as recorded)")
    ev.add_argument("--max-steps", type=positive_int, default=MAX_EPISODE_STEPS)
    ev.add_argument("--precision", choices=PRECISION_CHOICES, default=DEFAULT_PRECISION, help=PRECISION_HELP)
    ev.add_argument("--unnorm-key", default=None)
    add_center_crop_argument(ev)
    ev.add_argument("--no-expert", action="store_true", help="skip the scripted-expert bound")
    ev.add_argument("--no-untrained", action="store_true", help="skip the untrained-model bound")
    ev.add_argument(
        "--untrained-episodes", type=int, default=None, help="episodes per task for the untrained bound"
    )
    ev.add_argument("--num-threads", type=int, default=None)
    ev.add_argument("--report", type=Path, default=None, help="write the results as JSON here")
    ev.add_argument(
        "--breakdown",
        action="store_true",
        help="also print how far each episode got (reached the named part, grasped, lifted; placed is "
        "success)",
    )
    add_parts_argument(ev)
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(func=run_sim_eval)


def run_sim_eval(args: argparse.Namespace) -> int:
    import torch

    from vla_ros.eval.closed_loop import (
        evaluate_in_workcell,
        expert_factory,
        format_breakdown,
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
        num_parts=parts_range(args.parts),
    )
    results = []
    if not args.no_expert:
        results += evaluate_in_workcell(expert_factory, "expert", render=False, **common)
    factory = vla_policy_factory(
        args.model, args.adapter, args.precision, args.unnorm_key, center_crop=args.center_crop
    )
    results += evaluate_in_workcell(factory, "trained", **common)
    if not args.no_untrained:
        untrained = vla_policy_factory(
            args.model, None, args.precision, args.unnorm_key, untrained=True, center_crop=args.center_crop
        )
        if args.untrained_episodes is not None:
            common["episodes"] = args.untrained_episodes
        results += evaluate_in_workcell(untrained, "untrained", **common)
    print(format_table(results))
    if args.breakdown:
        print("\n" + format_breakdown(results))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    return 0
