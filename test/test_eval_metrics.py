"""Metrics against values worked out by hand on a three-step episode."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_ros.eval.metrics import EpisodePredictions, compute_metrics, direction_cosines, token_accuracy


def _crafted() -> EpisodePredictions:
    recorded = [
        [0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        [0.0, 0.02, 0.0, 0.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    ]
    predicted = [
        [0.02, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8],
        [0.02, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2],
        [0.0, 0.0, 0.001, 0.0, 0.0, 0.0, 0.6],
    ]
    return EpisodePredictions(
        episode_id="crafted",
        instruction="x",
        recorded=recorded,
        predicted=predicted,
        recorded_token_ids=[(1, 2, 3), (4, 5, 6), ()],
        predicted_token_ids=[(1, 2, 9), (4, 5, 6), (7, 7, 7)],
        latencies_s=[0.1, 0.2, 0.6],
    )


def test_metrics_match_hand_computed_values():
    m = compute_metrics([_crafted()]).per_episode["crafted"]
    assert m.num_steps == 3
    # dx errors 0.01, 0.02, 0; dy errors 0, -0.02, 0; dz errors 0, 0, 0.001; gripper -0.2, -0.8, 0.6
    assert m.mae["dx"] == pytest.approx(0.01)
    assert m.rmse["dx"] == pytest.approx(math.sqrt((1e-4 + 4e-4) / 3))
    assert m.mae["dy"] == pytest.approx(0.02 / 3)
    assert m.rmse["dy"] == pytest.approx(math.sqrt(4e-4 / 3))
    assert m.mae["dz"] == pytest.approx(0.001 / 3)
    assert m.mae["droll"] == 0.0
    assert m.mae["gripper"] == pytest.approx(1.6 / 3)
    assert m.rmse["gripper"] == pytest.approx(math.sqrt((0.04 + 0.64 + 0.36) / 3))
    assert m.mae_translation_m == pytest.approx((0.01 + 0.02 / 3 + 0.001 / 3) / 3)
    # open/closed at 0.5: (0.8 vs 1) agree, (0.2 vs 1) and (0.6 vs 0) disagree
    assert m.gripper_accuracy == pytest.approx(1 / 3)
    # step 0 same direction (1), step 1 orthogonal (0), step 2 recorded translation is zero: left out
    assert m.direction_cosine_mean == pytest.approx(0.5)
    assert m.direction_steps == 2
    # 5 of 6 token positions equal; step 2 has no reference tokens
    assert m.token_accuracy == pytest.approx(5 / 6)
    assert m.token_steps == 2
    assert m.latency_p50_s == pytest.approx(0.2)
    assert m.latency_p95_s == pytest.approx(0.2 + 0.9 * 0.4)  # linear interpolation at rank 1.9
    assert m.latency_mean_s == pytest.approx(0.3)


def test_nonfinite_predictions_are_counted_and_left_out_of_errors():
    bad = EpisodePredictions("bad", "x", recorded=[[0.0] * 6 + [1.0]], predicted=[[np.nan] * 7])
    summary = compute_metrics([_crafted(), bad])
    assert summary.overall.num_steps == 4
    assert summary.overall.num_nonfinite_predictions == 1
    assert summary.overall.mae["dx"] == pytest.approx(0.01)
    assert summary.overall.token_accuracy == pytest.approx(5 / 6)  # steps without reference are skipped
    assert summary.per_episode["bad"].token_accuracy is None
    assert summary.per_episode["bad"].gripper_accuracy is None


def test_identical_actions_score_zero_error_and_full_agreement():
    ep = _crafted()
    same = EpisodePredictions(
        "same", "x", ep.recorded, ep.recorded.copy(), ep.recorded_token_ids, ep.recorded_token_ids
    )
    m = compute_metrics([same]).overall
    assert all(v == 0.0 for v in m.mae.values())
    assert all(v == 0.0 for v in m.rmse.values())
    assert m.gripper_accuracy == 1.0
    assert m.token_accuracy == 1.0
    assert m.direction_cosine_mean == pytest.approx(1.0)


def test_direction_cosine_ignores_near_zero_vectors():
    pred = np.array([[1e-5, 0, 0, 0, 0, 0, 0], [0.0, -0.01, 0, 0, 0, 0, 0]])
    rec = np.array([[0.01, 0, 0, 0, 0, 0, 0], [0.0, 0.01, 0, 0, 0, 0, 0]])
    np.testing.assert_allclose(direction_cosines(pred, rec, min_norm=1e-4), [-1.0])


def test_token_accuracy_counts_missing_positions_as_wrong():
    assert token_accuracy([(1, 2)], [(1, 2, 3)]) == (pytest.approx(2 / 3), 1)
    assert token_accuracy(None, [(1,)]) == (None, 0)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 predictions for 1 recorded"):
        EpisodePredictions("e", "x", recorded=np.zeros((1, 7)), predicted=np.zeros((2, 7)))
