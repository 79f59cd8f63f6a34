"""Score a resolver on a benchmark file (shared/disambiguation/FORMAT.md) and on the raw baseline.

Metrics, exactly those FORMAT.md lists:

- accuracy: final status matches; for ``resolved`` the action and every required argument match
  (pick_place: object+target, pick: object, place: target, push: object+direction, move_to: target);
  for ``clarify`` the candidate set matches exactly; for ``reject`` the status alone. A case with an
  ``answer`` counts as correct only if the resolver first asked (status clarify) and the outcome after
  the answer matches.
- clarification precision / recall / F1 with ``clarify`` as the positive class, on the first turn
  (a case with an ``answer`` is a positive: the resolver must ask there).
- wrong-command rate, two parts: ``wrong_command_rate`` = share of all cases whose final prediction is
  ``resolved`` but is not the expected command (acting on a guess), and ``reject_forwarded_rate`` =
  share of ``reject`` cases that were forwarded.
- per-language and per-category breakdowns, latency per case (p50, p95; resolve + answer).

Baseline ``raw`` (forward the operator's words unchanged, what the package replaces): it never asks
and never refuses, so every case is "resolved" with no structured command. It is credited as
correct on every case whose expected status is ``resolved`` and that has no ``answer`` (an optimistic
upper bound: we assume the policy would act correctly on the raw words, even Chinese, typos and
pronouns), and as a wrong command everywhere else (it forwards ambiguous, impossible and unsafe
requests, and dialog cases whose object is only decided by the answer).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vla_ros.disambiguation.resolver import InstructionResolver, Resolution
from vla_ros.disambiguation.scene import Scene, SceneFormatError

REQUIRED_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "pick_place": ("object", "target"),
    "pick": ("object",),
    "place": ("target",),
    "push": ("object", "direction"),
    "move_to": ("target",),
    "stop": (),
    "home": (),
}
SYSTEMS = ("resolver", "raw")


class BenchmarkFormatError(ValueError):
    """A benchmark line does not follow FORMAT.md; the message names the line."""


@dataclass
class CaseResult:
    id: str
    lang: str
    category: str
    expected: dict
    predicted: dict
    first_status: str
    has_answer: bool
    asked: bool
    correct: bool
    wrong_command: bool
    latency_s: float
    question: str = ""
    instruction: str = ""


@dataclass
class _Tally:
    cases: int = 0
    correct: int = 0
    wrong: int = 0
    latencies: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "cases": self.cases,
            "accuracy": _ratio(self.correct, self.cases),
            "wrong_command_rate": _ratio(self.wrong, self.cases),
        }


def load_cases(path: str | Path) -> list[dict]:
    """Read a JSONL benchmark, checking each line's fields so that a broken line names itself."""
    cases = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                case = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkFormatError(f"{path}:{number}: not valid JSON: {exc}") from exc
            for key in ("instruction", "scene", "expected"):
                if key not in case:
                    raise BenchmarkFormatError(f"{path}:{number}: missing '{key}' (see FORMAT.md)")
            status = case["expected"].get("status")
            if status not in ("resolved", "clarify", "reject"):
                raise BenchmarkFormatError(
                    f"{path}:{number}: expected.status must be resolved/clarify/reject"
                )
            if status == "resolved" and case["expected"].get("action") not in REQUIRED_ARGUMENTS:
                raise BenchmarkFormatError(
                    f"{path}:{number}: expected.action must be one of {', '.join(REQUIRED_ARGUMENTS)}"
                )
            case.setdefault("id", f"line-{number}")
            case.setdefault("lang", "en")
            case.setdefault("category", "uncategorised")
            case.setdefault("history", [])
            cases.append(case)
    return cases


def prediction_dict(res: Resolution) -> dict:
    return {
        "status": res.status,
        "action": res.action,
        "object": res.object_id,
        "target": res.target_id,
        "direction": res.direction,
        "candidates": sorted(res.candidates),
    }


def matches_expected(expected: Mapping[str, Any], predicted: Mapping[str, Any]) -> bool:
    """FORMAT.md's rule: status, then the action's required arguments or the exact candidate set."""
    if predicted.get("status") != expected.get("status"):
        return False
    if expected["status"] == "resolved":
        action = expected.get("action")
        if predicted.get("action") != action:
            return False
        return all(predicted.get(arg) == expected.get(arg) for arg in REQUIRED_ARGUMENTS.get(action, ()))
    if expected["status"] == "clarify":
        return set(predicted.get("candidates") or ()) == set(expected.get("candidates") or ())
    return True


def run_resolver_case(resolver: InstructionResolver, case: Mapping[str, Any]) -> CaseResult:
    try:
        scene = Scene.from_dict(case["scene"])
    except SceneFormatError as exc:
        raise BenchmarkFormatError(f"case {case.get('id')}: {exc}") from exc
    start = time.perf_counter()
    first = resolver.resolve(case["instruction"], scene, case.get("history") or [])
    final = first
    has_answer = "answer" in case
    if has_answer and first.status == "clarify":
        final = resolver.answer(first, case["answer"], scene)
    latency = time.perf_counter() - start
    predicted = prediction_dict(final)
    expected = case["expected"]
    correct = matches_expected(expected, predicted)
    if has_answer and first.status != "clarify":
        correct = False
    wrong = final.status == "resolved" and not (
        expected["status"] == "resolved" and matches_expected(expected, predicted)
    )
    return CaseResult(
        id=str(case.get("id")),
        lang=str(case.get("lang", "en")),
        category=str(case.get("category", "uncategorised")),
        expected=dict(expected),
        predicted=predicted,
        first_status=first.status,
        has_answer=has_answer,
        asked=first.status == "clarify",
        correct=correct,
        wrong_command=wrong,
        latency_s=latency,
        question=first.question,
        instruction=final.instruction,
    )


def run_raw_case(case: Mapping[str, Any]) -> CaseResult:
    """The baseline: forward the raw words. See the module docstring for how it is credited."""
    start = time.perf_counter()
    text = str(case["instruction"])
    latency = time.perf_counter() - start
    expected = case["expected"]
    has_answer = "answer" in case
    correct = expected["status"] == "resolved" and not has_answer
    predicted = {"status": "resolved", "action": None, "object": None, "target": None, "direction": None,
                 "candidates": []}  # fmt: skip
    return CaseResult(
        id=str(case.get("id")),
        lang=str(case.get("lang", "en")),
        category=str(case.get("category", "uncategorised")),
        expected=dict(expected),
        predicted=predicted,
        first_status="resolved",
        has_answer=has_answer,
        asked=False,
        correct=correct,
        wrong_command=not correct,
        latency_s=latency,
        instruction=text,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def summarize(results: Sequence[CaseResult], system: str, source: str = "") -> dict:
    n = len(results)
    correct = sum(r.correct for r in results)
    expected_pos = [r.expected["status"] == "clarify" or r.has_answer for r in results]
    predicted_pos = [r.first_status == "clarify" for r in results]
    tp = sum(e and p for e, p in zip(expected_pos, predicted_pos, strict=True))
    fp = sum(p and not e for e, p in zip(expected_pos, predicted_pos, strict=True))
    fn = sum(e and not p for e, p in zip(expected_pos, predicted_pos, strict=True))
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    wrong = sum(r.wrong_command for r in results)
    rejects = [r for r in results if r.expected["status"] == "reject"]
    rejects_forwarded = sum(r.predicted["status"] == "resolved" for r in rejects)
    dialog = [r for r in results if r.has_answer]
    by_lang: dict[str, _Tally] = {}
    by_cat: dict[str, _Tally] = {}
    by_status: dict[str, _Tally] = {}
    for r in results:
        for table, key in ((by_lang, r.lang), (by_cat, r.category), (by_status, r.expected["status"])):
            tally = table.setdefault(key, _Tally())
            tally.cases += 1
            tally.correct += r.correct
            tally.wrong += r.wrong_command
            tally.latencies.append(r.latency_s)
    latencies_ms = [r.latency_s * 1000.0 for r in results]
    return {
        "system": system,
        "source": source,
        "cases": n,
        "accuracy": _ratio(correct, n),
        "correct": correct,
        "clarification": {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn},
        "clarification_precision": precision,
        "clarification_recall": recall,
        "clarification_f1": f1,
        "wrong_command_rate": _ratio(wrong, n),
        "wrong_commands": wrong,
        "reject_cases": len(rejects),
        "reject_forwarded": rejects_forwarded,
        "reject_forwarded_rate": _ratio(rejects_forwarded, len(rejects)),
        "dialog": {
            "cases": len(dialog),
            "asked": sum(r.asked for r in dialog),
            "correct_after_answer": sum(r.correct for r in dialog),
        },
        "by_language": {k: v.as_dict() for k, v in sorted(by_lang.items())},
        "by_category": {k: v.as_dict() for k, v in sorted(by_cat.items())},
        "by_expected_status": {k: v.as_dict() for k, v in sorted(by_status.items())},
        "latency_ms": {
            "p50": percentile(latencies_ms, 50),
            "p95": percentile(latencies_ms, 95),
            "max": max(latencies_ms, default=0.0),
            "mean": sum(latencies_ms) / n if n else 0.0,
        },
        "failures": [asdict(r) for r in results if not r.correct],
    }


def evaluate(
    cases: Iterable[Mapping[str, Any]],
    system: str = "resolver",
    resolver: InstructionResolver | None = None,
    source: str = "",
) -> dict:
    """Score ``system`` ("resolver" or "raw") on benchmark cases; returns the metrics dict."""
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}: use one of {', '.join(SYSTEMS)}")
    cases = list(cases)
    if system == "raw":
        results = [run_raw_case(c) for c in cases]
    else:
        resolver = resolver or InstructionResolver()
        # Latency is per case: the lazy start-up work (dictionaries) is done before the first one.
        if cases:
            resolver.warm_up()
        results = [run_resolver_case(resolver, c) for c in cases]
    return summarize(results, system, source)


def format_report(metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> str:
    """A readable table; with ``baseline`` the two systems side by side."""
    systems = [metrics] + ([baseline] if baseline else [])
    names = [m["system"] for m in systems]
    width = 26
    lines = [f"disambiguation benchmark: {metrics.get('source') or ''}  ({metrics['cases']} cases)"]
    lines.append(f"{'metric':<{width}}" + "".join(f"{n:>14}" for n in names))
    lines.append("-" * (width + 14 * len(names)))

    def row(label: str, values: list[str]) -> None:
        lines.append(f"{label:<{width}}" + "".join(f"{v:>14}" for v in values))

    row("accuracy", [f"{m['accuracy']:.3f}" for m in systems])
    row("wrong-command rate", [f"{m['wrong_command_rate']:.3f}" for m in systems])
    row("reject forwarded", [f"{m['reject_forwarded']}/{m['reject_cases']}" for m in systems])
    row("clarify precision", [f"{m['clarification_precision']:.3f}" for m in systems])
    row("clarify recall", [f"{m['clarification_recall']:.3f}" for m in systems])
    row("clarify F1", [f"{m['clarification_f1']:.3f}" for m in systems])
    row("dialog asked", [f"{m['dialog']['asked']}/{m['dialog']['cases']}" for m in systems])
    row("latency p50 (ms)", [f"{m['latency_ms']['p50']:.2f}" for m in systems])
    row("latency p95 (ms)", [f"{m['latency_ms']['p95']:.2f}" for m in systems])
    for section, title in (("by_language", "language"), ("by_category", "category")):
        lines.append("")
        lines.append(f"{title + ' (accuracy / wrong)':<{width}}" + "".join(f"{n:>14}" for n in names))
        for key in metrics[section]:
            cells = []
            for m in systems:
                entry = m[section].get(key)
                cells.append(f"{entry['accuracy']:.2f} / {entry['wrong_command_rate']:.2f}" if entry else "-")
            row(f"  {key} ({metrics[section][key]['cases']})", cells)
    return "\n".join(lines)


def write_json(metrics: Mapping[str, Any], path: str | Path) -> None:
    """Write atomically so that an interrupted run never leaves a half-written report."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
