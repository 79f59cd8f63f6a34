"""``vla-ros eval-bag``: replay recorded bags through one or more policies and write a report."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from vla_ros.action import Policy
from vla_ros.data.bag import BagError
from vla_ros.data.cli import add_topic_arguments, sync_from_args, topics_from_args
from vla_ros.data.dataset import CleaningConfig, DatasetError, load_episodes
from vla_ros.eval.evaluate import (
    KEEP_ALL_STEPS,
    EvalResult,
    EvaluationError,
    RecordedActionPolicy,
    evaluate_episodes,
)
from vla_ros.eval.report import format_comparison, write_report

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
        models = evaluate_episodes(episodes, policies, progress=not args.no_progress, seed=args.seed)
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
    p.add_argument(
        "--precision", default="bf16", choices=("bf16", "fp32"), help="compute dtype when not quantized"
    )
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
    p.add_argument("--out", type=Path, default=Path("eval_report"), metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    add_topic_arguments(p)
    p.set_defaults(func=run_eval_bag)
