"""``vla-ros study``: the disambiguation study (raw words vs resolver vs canonical vs expert, closed loop)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla_ros.cli.arguments import positive_int
from vla_ros.cli.model import add_center_crop_argument
from vla_ros.model.options import DEFAULT_PRECISION, PRECISION_CHOICES, PRECISION_HELP
from vla_ros.sim import MAX_EPISODE_STEPS

# Our CLI names -> the model core's names (as eval-bag's --quantization).
_RUNTIME_QUANTIZATION = {"8bit": "8bit", "4bit": "4bit-nf4"}


def register_study(subparsers: argparse._SubParsersAction) -> None:
    from vla_ros.eval.study import REQUEST_KINDS, STUDY_TASKS

    p = subparsers.add_parser(
        "study",
        help="the disambiguation study: operator requests through raw / resolver / canonical / expert, "
        "closed loop in the workcell on held-out layouts",
        description="Closed-loop episodes in the embedded workcell on held-out layouts (seeds as sim-eval). "
        "Each layout gets one operator request of every kind; each request runs under every condition: raw "
        "words to OpenVLA (baseline), the disambiguation resolver then OpenVLA (questions answered by a "
        "scripted operator), the canonical instruction (upper bound of understanding), the scripted expert "
        "(upper bound of execution), and optionally the policy quantized. Writes episodes.jsonl as it goes "
        "(Ctrl-C keeps finished episodes), then summary.json, success.png and report.md.",
    )
    p.add_argument("--model", type=Path, required=True, help="checkpoint directory (official layout)")
    p.add_argument("--out", type=Path, default=Path("artifacts/study"), metavar="DIR")
    p.add_argument(
        "--layouts",
        type=int,
        default=10,
        help="held-out layouts per task (episodes per condition = layouts x tasks x kinds)",
    )
    p.add_argument(
        "--seed-start", type=int, default=100000, help="first layout seed: keep clear of demo seeds"
    )
    p.add_argument("--task", nargs="+", choices=STUDY_TASKS, default=list(STUDY_TASKS))
    p.add_argument("--kinds", nargs="+", choices=REQUEST_KINDS, default=list(REQUEST_KINDS))
    p.add_argument(
        "--quantization",
        nargs="*",
        choices=sorted(_RUNTIME_QUANTIZATION),
        default=[],
        help="also run canonical and resolver on the policy quantized with bitsandbytes (8bit, 4bit = NF4)",
    )
    p.add_argument(
        "--conditions",
        nargs="+",
        default=None,
        help="only these conditions (raw resolver canonical expert, canonical@8bit, resolver@4bit-nf4...)",
    )
    p.add_argument(
        "--vocabulary-files",
        nargs="*",
        default=["disambiguation_sim.yaml"],
        help="vocabulary overlays for the resolver (default: the workcell's own forwarded wording)",
    )
    p.add_argument("--precision", choices=PRECISION_CHOICES, default=DEFAULT_PRECISION, help=PRECISION_HELP)
    add_center_crop_argument(p)
    p.add_argument("--max-steps", type=positive_int, default=MAX_EPISODE_STEPS)
    p.add_argument("--no-reuse", action="store_true", help="run every episode, even identical rollouts")
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_study)


def run_study(args: argparse.Namespace) -> int:
    import torch

    from vla_ros.eval.study import Study, StudyConfig, format_table

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    config = StudyConfig(
        model_dir=args.model,
        out_dir=args.out,
        layouts=args.layouts,
        seed_start=args.seed_start,
        tasks=args.task,
        kinds=args.kinds,
        quantizations=[_RUNTIME_QUANTIZATION[q] for q in args.quantization],
        conditions=args.conditions,
        vocabulary_files=args.vocabulary_files,
        precision=args.precision,
        center_crop=args.center_crop,
        max_steps=args.max_steps,
        reuse=not args.no_reuse,
        progress=not args.no_progress,
    )
    summary = Study(config).run()
    print(format_table(summary))
    meta = summary["meta"]
    print(f"forwarded wording: {json.dumps(meta['forwarded_wording'], ensure_ascii=False)}")
    print(f"{meta['episodes']} episodes ({meta['rollouts_run']} rollouts) in {meta['wall_time_s']:.0f} s"
          + (" - interrupted, partial results" if meta["interrupted"] else ""))  # fmt: skip
    print(f"wrote {args.out}/summary.json, success.png, report.md, episodes.jsonl")
    return 130 if meta["interrupted"] else 0
