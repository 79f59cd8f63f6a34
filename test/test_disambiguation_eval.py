"""Benchmark scoring (FORMAT.md), the raw-forwarding baseline, the CLI, and a floor on the dev set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from vla_ros.disambiguation.cli import register
from vla_ros.disambiguation.evaluate import evaluate, load_cases, matches_expected, percentile

DEV = Path("/work/shared/disambiguation/dev.jsonl")
OWN = Path(__file__).parent / "data" / "disambiguation_own.jsonl"

SCENE = {
    "objects": [
        {"id": "gear_a", "name": "gear", "kind": "part", "category": "gear", "position": [0.5, 0.2, 0]},
        {"id": "gear_b", "name": "gear", "kind": "part", "category": "gear", "position": [0.5, -0.2, 0]},
        {"id": "nut_1", "name": "nut", "kind": "part", "category": "nut", "position": [0.4, 0.0, 0]},
    ],
    "locations": [{"id": "tray_1", "name": "tray 1", "category": "tray", "position": [0.3, 0.3, 0]}],
    "holding": None,
}


def _case(cid, text, expected, **extra):
    return {
        "id": cid,
        "lang": "en",
        "category": extra.pop("category", "c"),
        "instruction": text,
        "history": [],
        "scene": SCENE,
        "expected": expected,
        **extra,
    }


CASES = [
    # resolver right: resolved
    _case(
        "1",
        "put the nut on tray 1",
        {"status": "resolved", "action": "pick_place", "object": "nut_1", "target": "tray_1"},
    ),
    # resolver right: clarify with the exact candidates
    _case("2", "pick up the gear", {"status": "clarify", "candidates": ["gear_a", "gear_b"]}),
    # resolver right: reject
    _case("3", "throw the nut at me", {"status": "reject"}, category="unsafe"),
    # expected clarify but the benchmark (deliberately) lists other candidates: status right, set wrong
    _case("4", "pick up the gear", {"status": "clarify", "candidates": ["gear_a"]}),
    # a dialog case: must ask first, then resolve with the answer
    _case(
        "5",
        "pick up the gear",
        {"status": "resolved", "action": "pick", "object": "gear_b"},
        answer="the right one",
        category="dialog",
    ),
    # expected resolved to gear_a, the resolver asks: not a wrong command, but not accurate
    _case("6", "pick up the gear", {"status": "resolved", "action": "pick", "object": "gear_a"}),
]


def test_matches_expected_checks_only_the_required_arguments():
    expected = {"status": "resolved", "action": "place", "target": "tray_1"}
    assert matches_expected(
        expected, {"status": "resolved", "action": "place", "object": "x", "target": "tray_1"}
    )
    assert not matches_expected(expected, {"status": "resolved", "action": "place", "target": "bin"})
    assert matches_expected(
        {"status": "clarify", "candidates": ["b", "a"]}, {"status": "clarify", "candidates": ["a", "b"]}
    )
    assert matches_expected({"status": "reject"}, {"status": "reject"})


def test_resolver_metrics_follow_the_format_definitions():
    m = evaluate(CASES, "resolver")
    assert m["cases"] == 6
    assert m["correct"] == 4 and m["accuracy"] == pytest.approx(4 / 6)
    # first-turn clarify on cases 2, 4, 5, 6; expected positive on 2, 4, 5 -> tp 3, fp 1, fn 0
    assert (m["clarification"]["tp"], m["clarification"]["fp"], m["clarification"]["fn"]) == (3, 1, 0)
    assert m["clarification_precision"] == pytest.approx(0.75)
    assert m["clarification_recall"] == pytest.approx(1.0)
    assert m["clarification_f1"] == pytest.approx(2 * 0.75 / 1.75)
    assert m["wrong_command_rate"] == 0.0
    assert (m["reject_cases"], m["reject_forwarded"]) == (1, 0)
    assert m["dialog"] == {"cases": 1, "asked": 1, "correct_after_answer": 1}
    assert m["by_category"]["unsafe"]["accuracy"] == 1.0
    assert m["latency_ms"]["p95"] >= m["latency_ms"]["p50"] > 0.0


def test_raw_baseline_forwards_everything_and_is_credited_only_on_plain_resolved_cases():
    m = evaluate(CASES, "raw")
    assert m["correct"] == 2  # cases 1 and 6: expected resolved and no answer
    assert m["wrong_command_rate"] == pytest.approx(4 / 6)
    assert m["reject_forwarded_rate"] == 1.0
    assert m["clarification_recall"] == 0.0
    assert m["dialog"]["asked"] == 0


def test_percentile_interpolates():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([], 95) == 0.0


def _run_cli(argv):
    parser = argparse.ArgumentParser(prog="vla-ros")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_prints_a_table_and_writes_json_with_the_required_keys(tmp_path, capsys):
    bench = tmp_path / "bench.jsonl"
    bench.write_text("\n".join(json.dumps(c) for c in CASES) + "\n", encoding="utf-8")
    out = tmp_path / "out.json"
    assert _run_cli(["disambiguate-eval", str(bench), "--json", str(out), "--baseline", "raw"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "wrong-command rate" in printed and "raw" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["accuracy"] == pytest.approx(4 / 6)
    assert data["wrong_command_rate"] == 0.0
    assert data["baseline"]["system"] == "raw"


def test_cli_reports_a_broken_benchmark_file(tmp_path, capsys):
    bench = tmp_path / "bad.jsonl"
    bench.write_text('{"instruction": "x"}\n', encoding="utf-8")
    assert _run_cli(["disambiguate-eval", str(bench)]) == 2
    assert "missing 'scene'" in capsys.readouterr().err


@pytest.mark.skipif(not DEV.exists(), reason="shared dev set not mounted")
def test_dev_set_accuracy_floor_and_wrong_command_ceiling():
    m = evaluate(load_cases(DEV), "resolver")
    baseline = evaluate(load_cases(DEV), "raw")
    assert m["accuracy"] >= 0.9
    assert m["wrong_command_rate"] <= 0.03
    assert m["reject_forwarded"] == 0
    assert m["by_language"]["zh"]["accuracy"] >= 0.85
    assert m["accuracy"] > baseline["accuracy"]


def test_own_phrasings_set_accuracy_floor():
    m = evaluate(load_cases(OWN), "resolver")
    assert m["accuracy"] >= 0.9
    assert m["wrong_command_rate"] <= 0.03
    assert m["reject_forwarded"] == 0
