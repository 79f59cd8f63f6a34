"""evaluate_bags end to end on synthetic bags, and the report it writes."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from vla_ros.action import Action
from vla_ros.data.dataset import TopicConfig, load_episodes
from vla_ros.data.synthetic import write_demo_bag
from vla_ros.eval.evaluate import KEEP_ALL_STEPS, EvaluationError, RecordedActionPolicy, evaluate_bags
from vla_ros.eval.report import format_comparison, write_report


class ZeroMotionPolicy:
    """Never moves, keeps the gripper open: its error is the recorded motion itself."""

    name = "zero"

    def predict_action(self, image: np.ndarray, instruction: str) -> Action:
        return Action(vector=[0, 0, 0, 0, 0, 0, 1.0])


def _actions(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(-0.01, 0.01, (n, 6)), (rng.uniform(size=(n, 1)) > 0.5)], axis=1)


@pytest.fixture
def bags(tmp_path):
    tokens = [[31800 + k, 31801, 31802, 31803, 31804, 31805, 31806] for k in range(6)]
    return [
        write_demo_bag(tmp_path / "demo_mcap", _actions(6, 0), storage="mcap", token_ids=tokens, seed=0),
        write_demo_bag(tmp_path / "demo_sqlite", _actions(5, 1), storage="sqlite3", seed=1),
    ]


@pytest.mark.parametrize("source", ["action_step", "twist", "ee_pose"])
def test_policy_replaying_the_recording_scores_zero_error(bags, source):
    topics = TopicConfig(action_source=source)
    episodes, _ = load_episodes(bags, topics, cleaning=KEEP_ALL_STEPS)
    result = evaluate_bags(bags, {"recorded": RecordedActionPolicy(episodes)}, topics, progress=False)
    m = result.models["recorded"].metrics.overall
    assert m.num_steps == 11
    assert max(m.mae.values()) == 0.0
    assert max(m.rmse.values()) == 0.0
    assert m.gripper_accuracy == 1.0
    assert m.direction_cosine_mean == pytest.approx(1.0)
    if source == "action_step":
        assert m.token_accuracy == 1.0
        assert m.token_steps == 6  # only the mcap bag recorded tokens


def test_models_are_compared_side_by_side_and_the_report_embeds_the_plots(bags, tmp_path):
    episodes, _ = load_episodes(bags, cleaning=KEEP_ALL_STEPS)
    policies = {"recorded": RecordedActionPolicy(episodes), "zero": ZeroMotionPolicy()}
    result = evaluate_bags(bags, policies, progress=False)
    zero = result.models["zero"].metrics.overall
    recorded_actions = np.concatenate([e.actions for e in episodes])
    assert zero.mae["dx"] == pytest.approx(np.abs(recorded_actions[:, 0]).mean())
    assert zero.gripper_accuracy == pytest.approx(np.mean(recorded_actions[:, 6] >= 0.5))
    assert zero.direction_steps == 0  # a zero translation has no direction
    assert zero.latency_p50_s is not None and zero.latency_p95_s >= zero.latency_p50_s

    files = write_report(result, tmp_path / "report")
    assert files.html.exists() and files.summary_json.exists()
    assert len(files.plots) == 2 + 2  # one per episode, one histogram per model
    page = files.html.read_text()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == len(files.plots)
    assert {base64.b64decode(e) for e in embedded} == {p.read_bytes() for p in files.plots}
    assert "<th>model</th>" in page and ">zero<" in page and ">recorded<" in page

    summary = json.loads(files.summary_json.read_text())
    assert [row["model"] for row in summary["comparison"]] == ["recorded", "zero"]
    assert summary["comparison"][0]["mae_translation_m"] == 0.0
    assert set(summary["models"]["zero"]["per_episode"]) == {"demo_mcap#0", "demo_sqlite#0"}
    assert "zero" in format_comparison(result)


def test_a_failing_policy_is_reported_with_episode_and_step(bags):
    class Broken:
        name = "broken"

        def predict_action(self, image, instruction):
            raise RuntimeError("CUDA out of memory")

    with pytest.raises(
        EvaluationError, match=r"'broken' failed on episode demo_mcap#0 step 0.*out of memory"
    ):
        evaluate_bags(bags, {"broken": Broken()}, progress=False)


def test_batched_evaluation_gives_each_step_the_action_it_gets_alone(bags, tmp_path):
    from vla_ros.model.tiny import make_tiny_checkpoint
    from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

    policy = VLAPolicy(
        PolicyConfig(checkpoint_dir=make_tiny_checkpoint(tmp_path / "tiny", seed=2), precision="fp32")
    )
    one = evaluate_bags(bags, {"vla": policy}, progress=False).models["vla"].predictions
    four = evaluate_bags(bags, {"vla": policy}, progress=False, batch_size=4).models["vla"].predictions
    assert [p.episode_id for p in one] == [p.episode_id for p in four]
    for a, b in zip(one, four, strict=True):
        assert a.predicted_token_ids == b.predicted_token_ids
        np.testing.assert_array_equal(a.predicted, b.predicted)
        assert len(b.latencies_s) == len(a.latencies_s) > 4
