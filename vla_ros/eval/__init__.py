"""Evaluation of policies, in one place.

- :mod:`.evaluate`, :mod:`.metrics`, :mod:`.report`: offline, every step of recorded bags through the
  policies, compared with the recording (``vla-ros eval-bag``);
- :mod:`.live`: the report of a live replay, a bag played at recorded timing into the running nodes
  (``vla-ros replay-bag``; the ROS side is :mod:`vla_ros.nodes.replay`);
- :mod:`.closed_loop`: closed-loop success in the simulated workcell on held-out layouts, with how
  far each episode got (``vla-ros sim-eval``).
"""

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
