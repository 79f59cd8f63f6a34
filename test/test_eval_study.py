"""The disambiguation study at a tiny size: the shipped checkpoint, real closed-loop rollouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vla_ros.eval.study import (
    REQUEST_KINDS,
    Condition,
    OperatorRequest,
    Study,
    StudyConfig,
    requests_for,
    wilson_interval,
)
from vla_ros.sim import Workcell, workcell_config

SIM_POLICY = Path(__file__).resolve().parents[1] / "models" / "sim_policy"


def test_wilson_interval_is_inside_zero_one_and_contains_the_rate():
    assert wilson_interval(0, 10)[0] == 0.0 and 0.2 < wilson_interval(0, 10)[1] < 0.35
    assert wilson_interval(10, 10)[1] == 1.0 and 0.65 < wilson_interval(10, 10)[0] < 0.8
    low, high = wilson_interval(50, 100)
    assert low < 0.5 < high and high - low < 0.2


def test_every_request_kind_is_generated_for_both_tasks_with_the_true_target():
    with Workcell(workcell_config(64, None)) as cell:
        for task in ("move_to", "move_to_part"):
            cell.reset(100003, task)
            requests = requests_for(cell.task, cell.layout, 100003)
            assert [r.kind for r in requests] == list(REQUEST_KINDS)
            truth = cell.task.location_id or cell.task.part_id
            assert {r.target_id for r in requests} == {truth}
            assert requests[0].text == cell.task.instruction  # canonical
            chinese = next(r for r in requests if r.kind == "chinese")
            assert chinese.language == "zh" and any("\u4e00" <= c <= "\u9fff" for c in chinese.text)
            assert next(r for r in requests if r.kind == "history").history


def test_the_scripted_operator_answers_in_the_language_of_the_question():
    request = OperatorRequest(
        "ambiguous", "en", "go over there", (), "bin_reject", "the reject bin", "废料箱"
    )
    assert request.answer("Where should I go?") == "the reject bin"
    assert request.answer("请问去哪里？") == "废料箱"


def test_condition_names_parse_and_unknown_ones_are_refused():
    assert Condition.parse("resolver@4bit-nf4") == Condition("resolver", "4bit-nf4")
    with pytest.raises(ValueError):
        Condition.parse("expert@8bit")
    with pytest.raises(ValueError):
        Condition.parse("telepathy")


@pytest.mark.skipif(not SIM_POLICY.is_dir(), reason="models/sim_policy is not in this checkout")
def test_study_at_tiny_size_gives_every_condition_results_and_the_expert_succeeds(tmp_path):
    config = StudyConfig(
        model_dir=SIM_POLICY,
        out_dir=tmp_path,
        layouts=1,
        kinds=("canonical", "ambiguous"),
        quantizations=("4bit-nf4",),
        progress=False,
    )
    summary = Study(config).run()
    names = ["raw", "resolver", "canonical", "expert", "canonical@4bit-nf4", "resolver@4bit-nf4"]
    assert list(summary["conditions"]) == names
    for name in names:
        c = summary["conditions"][name]
        assert c["episodes"] == 2 * 2, name  # two tasks x two kinds
        assert set(c["by_kind"]) == {"canonical", "ambiguous"}
        assert c["wilson95"][0] <= c["success_rate"] <= c["wilson95"][1]
    assert summary["conditions"]["expert"]["success_rate"] == 1.0
    # The ambiguous request makes the resolver ask (the scripted operator answers); raw never asks.
    assert summary["conditions"]["resolver"]["by_kind"]["ambiguous"]["questions_per_episode"] >= 1.0
    assert summary["conditions"]["raw"]["questions_per_episode"] == 0.0
    episodes = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 4 * len(names)
    # Canonical words on the learned tasks: the shipped checkpoint moves there (>= 95% held out).
    canonical = [e for e in episodes if e["condition"] == "canonical" and e["kind"] == "canonical"]
    assert any(e["success"] for e in canonical)
    report = (tmp_path / "report.md").read_text()
    assert "move to {target}" in report  # the forwarded wording is stated
    assert (tmp_path / "success.png").stat().st_size > 0


def test_a_typo_request_for_a_short_name_slips_a_three_letter_word():
    import numpy as np

    from vla_ros.eval.study import _with_typo

    rng = np.random.default_rng(0)
    slipped = _with_typo("move to the red nut", "red nut", rng)
    assert slipped != "move to the red nut" and slipped.startswith("move to the ")
    assert _with_typo("move to A1", "A1", rng) == "move to A1"  # nothing long enough to mistype
