"""Offline evaluation by rosbag replay: metrics, the recorded-action policy, reports."""

from vla_ros.eval.evaluate import (
    KEEP_ALL_STEPS,
    EvalResult,
    EvaluationError,
    ModelEvaluation,
    RecordedActionPolicy,
    evaluate_bags,
    evaluate_episodes,
)

__all__ = [
    "KEEP_ALL_STEPS",
    "EvalResult",
    "EvaluationError",
    "ModelEvaluation",
    "RecordedActionPolicy",
    "evaluate_bags",
    "evaluate_episodes",
]
