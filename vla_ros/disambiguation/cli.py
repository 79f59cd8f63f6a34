"""``vla-ros`` subcommands of the disambiguation area.

- ``disambiguate-eval FILE.jsonl [--json OUT.json] [--baseline raw]``: benchmark metrics
  (format: docs/disambiguation_format.md).
- ``disambiguate TEXT --scene SCENE.(json|yaml) [--history ...] [--answer ...]``: resolve one instruction,
  handy for integrators checking their vocabulary against their cell.
"""

from __future__ import annotations

import argparse
import json
import sys

from vla_ros.disambiguation.evaluate import (
    SYSTEMS,
    BenchmarkFormatError,
    evaluate,
    format_report,
    load_cases,
    write_json,
)
from vla_ros.disambiguation.resolver import InstructionResolver
from vla_ros.disambiguation.scene import load_scene_file
from vla_ros.disambiguation.vocabulary import VocabularyError, load_vocabulary


def _resolver(args: argparse.Namespace) -> InstructionResolver:
    base = [args.vocabulary] if args.vocabulary else None
    return InstructionResolver(load_vocabulary(base, extra_paths=args.extra_vocabulary or ()))


def _add_vocabulary_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vocabulary", help="base vocabulary YAML (default: the shipped config/disambiguation.yaml)"
    )
    parser.add_argument(
        "--extra-vocabulary",
        action="append",
        metavar="YAML",
        help="integrator vocabulary merged over the base (repeatable)",
    )


def run_eval(args: argparse.Namespace) -> int:
    try:
        cases = load_cases(args.file)
        resolver = _resolver(args) if args.system == "resolver" else None
        metrics = evaluate(cases, args.system, resolver, source=str(args.file))
        baseline = evaluate(cases, args.baseline, None, source=str(args.file)) if args.baseline else None
    except (OSError, BenchmarkFormatError, VocabularyError) as exc:
        print(f"disambiguate-eval: {exc}", file=sys.stderr)
        return 2
    print(format_report(metrics, baseline))
    if args.show_failures and metrics["failures"]:
        print("\nfailures:")
        for f in metrics["failures"]:
            print(f"  {f['id']} [{f['lang']}/{f['category']}] expected {f['expected']} got {f['predicted']}")
    if args.json:
        out = dict(metrics)
        if baseline is not None:
            out["baseline"] = baseline
        write_json(out, args.json)
        print(f"\nwrote {args.json}")
    return 0


def run_one(args: argparse.Namespace) -> int:
    # A bad scene or vocabulary file is a UserInputError: ``vla-ros`` prints its one line and exits 2
    # (``--debug`` shows the traceback).
    scene = load_scene_file(args.scene)
    resolver = _resolver(args)
    result = resolver.resolve(args.text, scene, args.history or [])
    print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    if args.answer is not None and result.status == "clarify":
        final = resolver.answer(result, args.answer, scene)
        print(json.dumps(final.to_dict(), ensure_ascii=False, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``disambiguate-eval`` and ``disambiguate`` to the ``vla-ros`` command."""
    ev = subparsers.add_parser(
        "disambiguate-eval",
        help="score the resolver on a benchmark JSONL (format: docs/disambiguation_format.md)",
        description="Accuracy, clarification precision/recall/F1, wrong-command rate, per language and "
        "category, latency p50/p95.",
    )
    ev.add_argument("file", help="benchmark JSONL, e.g. shared/disambiguation/dev.jsonl")
    ev.add_argument("--json", metavar="OUT.json", help="also write all metrics as JSON")
    ev.add_argument(
        "--baseline",
        choices=[s for s in SYSTEMS if s != "resolver"],
        help="also score a baseline ('raw': forward the words unchanged) and show it side by side",
    )
    ev.add_argument(
        "--system", choices=SYSTEMS, default="resolver", help="system whose metrics are top-level"
    )
    ev.add_argument("--show-failures", action="store_true", help="list the cases scored wrong")
    _add_vocabulary_args(ev)
    ev.set_defaults(func=run_eval)

    one = subparsers.add_parser("disambiguate", help="resolve one operator instruction against a scene file")
    one.add_argument("text", help="the operator's words")
    one.add_argument("--scene", required=True, help="scene as JSON/YAML (see docs/disambiguation_format.md)")
    one.add_argument("--history", action="append", help="an earlier instruction (repeat, oldest first)")
    one.add_argument("--answer", help="reply to the clarification question, if one is asked")
    _add_vocabulary_args(one)
    one.set_defaults(func=run_one)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vla-ros")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
