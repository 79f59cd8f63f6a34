"""Issue 28: the resolver understands operators it was not tuned on (scenes of its own, both languages).

The cases come from test/data/disambiguation_devcases.jsonl (8 workcells the old lexicon never saw);
the property tests check the two safety promises on arbitrary input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vla_ros.disambiguation import InstructionResolver, Scene, load_vocabulary

DEVCASES = Path(__file__).parent / "data" / "disambiguation_devcases.jsonl"
CASES = {c["id"]: c for c in map(json.loads, DEVCASES.read_text(encoding="utf-8").splitlines())}


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver()


def _resolve(resolver: InstructionResolver, case_id: str):
    case = CASES[case_id]
    scene = Scene.from_dict(case["scene"])
    res = resolver.resolve(case["instruction"], scene, case["history"])
    if case.get("answer") and res.status == "clarify":
        res = resolver.answer(res, case["answer"], scene)
    return case["expected"], res


def _matches(expected: dict, res) -> bool:
    if expected["status"] != res.status:
        return False
    if res.status == "clarify":
        return set(expected["candidates"]) == set(res.candidates)
    if res.status == "resolved":
        got = {"object": res.object_id, "target": res.target_id, "direction": res.direction}
        return res.action == expected["action"] and all(got[k] == expected[k] for k in got if k in expected)
    return True


KINDS = {
    "fillers_and_quantities_en": ["wt28-001", "wt28-140", "wt28-106", "wt28-099"],
    "part_numbers_and_skus_en": ["wt28-006", "wt28-021", "wt28-042", "wt28-029"],
    "code_switching_zh": ["wt28-020", "wt28-037", "wt28-055", "wt28-130", "wt28-131"],
    "numeric_superlatives_en": ["wt28-002", "wt28-003", "wt28-004", "wt28-025", "wt28-108"],
    "numeric_superlatives_zh": ["wt28-017", "wt28-070", "wt28-038", "wt28-120"],
    "defects": ["wt28-023", "wt28-024", "wt28-057", "wt28-039", "wt28-069"],
    "negation": ["wt28-007", "wt28-045", "wt28-061", "wt28-119"],
    "ordinals_between_landmarks": [
        "wt28-026",
        "wt28-065",
        "wt28-112",
        "wt28-123",
        "wt28-022",
        "wt28-077",
    ],
    "corrections": ["wt28-012", "wt28-078", "wt28-094", "wt28-098"],
    "safety_en": ["wt28-010", "wt28-135", "wt28-136", "wt28-014", "wt28-086", "wt28-013"],
    "safety_zh": ["wt28-019", "wt28-071", "wt28-072", "wt28-089", "wt28-133"],
    "chinese_words": ["wt28-124", "wt28-126", "wt28-127", "wt28-128", "wt28-129"],
    "dialogue": ["wt28-032", "wt28-096", "wt28-102", "wt28-103", "wt28-132", "wt28-008"],
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_resolver_handles_each_failure_kind_of_issue_28(resolver, kind):
    wrong = [cid for cid in KINDS[kind] if not _matches(*_resolve(resolver, cid))]
    assert not wrong, f"{kind}: {wrong}"


def test_devcases_score_and_never_forward_a_wrong_command(resolver):
    results = [(c["expected"], _resolve(resolver, cid)[1]) for cid, c in CASES.items()]
    accuracy = sum(_matches(e, r) for e, r in results) / len(results)
    wrong = sum(r.status == "resolved" and not _matches(e, r) for e, r in results)
    assert accuracy >= 0.9
    assert wrong <= 2


def test_a_stop_after_twelve_thousand_characters_still_stops(resolver):
    scene = Scene.from_dict(CASES["wt28-136"]["scene"])
    text = "put the bearing on the gearbox fixture " + "and keep it tidy " * 800 + "stop"
    assert len(text) > 12_000
    assert resolver.resolve(text, scene).action == "stop"


def test_the_workcell_config_forwards_the_workcells_own_wording():
    from vla_ros.sim.tasks import instruction_text

    vocab = load_vocabulary(extra_paths=["disambiguation_sim.yaml"])
    res = InstructionResolver(vocab).resolve("put the red gear in bin A", Scene.from_dict({
        "objects": [{"id": "g", "name": "red gear", "category": "gear", "position": [0.5, 0, 0]}],
        "locations": [{"id": "b", "name": "bin A", "category": "bin", "position": [0.4, 0.3, 0]}],
    }))  # fmt: skip
    assert res.instruction == instruction_text("pick_place", "red gear", "bin A", "in")
    assert InstructionResolver().canonical_instruction("pick_place", "g", "b", None, Scene.from_dict({
        "objects": [{"id": "g", "name": "red gear", "category": "gear", "position": [0.5, 0, 0]}],
        "locations": [{"id": "b", "name": "bin A", "category": "bin", "position": [0.4, 0.3, 0]}],
    })) == "pick up the red gear and place it in the bin A"  # fmt: skip


_SCENE = Scene.from_dict(CASES["wt28-105"]["scene"])
_IDS = {o.id for o in _SCENE.objects} | {loc.id for loc in _SCENE.locations}
_STOPS = ["stop", "STOP!", "halt", "e-stop", "kill it", "停", "等一下", "别动", "急停"]
_PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(st.text(max_size=400) | st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=200))
def test_no_input_forwards_a_command_naming_something_outside_the_scene(text):
    res = _RESOLVER.resolve(text, _SCENE)
    if res.status == "resolved":
        assert res.object_id in _IDS | {None} and res.target_id in _IDS | {None}


@_PROPERTY
@given(st.text(max_size=300), st.sampled_from(_STOPS), st.text(max_size=300))
def test_any_input_containing_a_stop_word_stops(before, stop, after):
    res = _RESOLVER.resolve(f"{before} {stop} {after}", _SCENE)
    assert res.status == "resolved" and res.action == "stop"


def test_a_hundred_kilobytes_of_noise_forwards_nothing_outside_the_scene():
    res = _RESOLVER.resolve("put the washer in " + "x\\x00y\u202e" * 25_000, _SCENE)
    assert res.status != "resolved" or {res.object_id, res.target_id} <= _IDS | {None}


_RESOLVER = InstructionResolver()
