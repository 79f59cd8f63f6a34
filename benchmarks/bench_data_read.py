"""Throughput of the data layer and the offline evaluator on synthetic bags.

Baseline (same run): iterating the bag's raw records with ``rosbags`` alone, without deserialising.
Usage: python benchmarks/bench_data_read.py [--steps 300] [--size 224]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vla_ros.data.bag import BagReader
from vla_ros.data.dataset import TopicConfig, read_bag_episodes
from vla_ros.data.synthetic import write_demo_bag
from vla_ros.eval.evaluate import RecordedActionPolicy, evaluate_episodes
from vla_ros.eval.report import write_report


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--size", type=int, default=224, help="square image side in pixels")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    actions = np.concatenate([rng.uniform(-0.01, 0.01, (args.steps, 6)), np.ones((args.steps, 1))], axis=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for storage in ("mcap", "sqlite3"):
            bag = Path(tmp) / storage
            _, t_write = _timed(
                lambda bag=bag, storage=storage: write_demo_bag(
                    bag, actions, storage=storage, image_size=(args.size, args.size)
                )
            )

            def raw_iterate(bag=bag) -> int:
                from rosbags.rosbag2 import Reader

                with Reader(bag) as reader:
                    return sum(1 for _ in reader.messages())

            n_raw, t_raw = _timed(raw_iterate)

            def deserialize(bag=bag) -> int:
                with BagReader(bag) as reader:
                    return sum(1 for _ in reader.messages())

            n_des, t_des = _timed(deserialize)
            episodes, t_eps = _timed(
                lambda bag=bag: read_bag_episodes(bag, TopicConfig(action_source="action_step"))
            )
            _, t_twist = _timed(lambda bag=bag: read_bag_episodes(bag, TopicConfig(action_source="twist")))
            policy = RecordedActionPolicy(episodes)
            models, t_eval = _timed(
                lambda episodes=episodes, policy=policy: evaluate_episodes(
                    episodes, {"recorded": policy}, progress=False
                )
            )
            rows += [
                (storage, "write bag (all topics)", args.steps, t_write),
                (storage, "BASELINE raw rosbags iteration", n_raw, t_raw),
                (storage, "BagReader deserialise all", n_des, t_des),
                (storage, "episodes (action_step, decode)", args.steps, t_eps),
                (storage, "episodes (twist @5 Hz, decode)", args.steps, t_twist),
                (storage, "evaluate RecordedActionPolicy", args.steps, t_eval),
            ]
        from vla_ros.data.dataset import CleaningReport
        from vla_ros.eval.evaluate import EvalResult

        result = EvalResult(["bench"], episodes, models, CleaningReport())
        _, t_report = _timed(lambda: write_report(result, Path(tmp) / "report"))
        rows.append(("-", "write report (1 episode, 1 model)", 1, t_report))
    print(f"{args.steps} steps, {args.size}x{args.size} RGB frames, 6 topics")
    print(f"{'storage':8} {'stage':36} {'items':>6} {'seconds':>8} {'items/s':>9}")
    for storage, stage, n, t in rows:
        print(f"{storage:8} {stage:36} {n:6d} {t:8.3f} {n / t:9.0f}")


if __name__ == "__main__":
    main()
