"""Memory and time of training on PNG-packed frames (``load_episodes(..., pack_images=True)``).

`vla-ros train` keeps every step's frames in memory. Decoded, a two-view 224 px step holds 301 kB,
which capped two-view training on this 23 GB machine at about 47,000 steps. This prints, for the same
bags read both ways: the bytes the frames hold, the time to read the bags, and the time for the
training set to produce one step's pixel values (decode, mirror, crop, normalise), with the ratios
packed / decoded measured in the same run.

Usage (from the repository root, after `make build`):

    bash scripts/with_env.sh python benchmarks/bench_packed_frames.py --bags DIR/* --wrist
    bash scripts/with_env.sh python benchmarks/bench_packed_frames.py   # records 4 episodes first
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from vla_ros.data.dataset import (
        CleaningConfig,
        SyncConfig,
        TopicConfig,
        compute_dataset_statistics,
        load_episodes,
    )
    from vla_ros.model.action_tokenizer import ActionStatistics, ActionTokenizer
    from vla_ros.model.processing import ImageProcessor, PromptTokenizer
    from vla_ros.model.tiny import write_tokenizer
    from vla_ros.train.data import ActionTokenDataset
    from vla_ros.train.record import WRIST_CAMERA_TOPIC, record_demonstrations

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bags", nargs="*", type=Path, help="bag directories (default: record a few)")
    parser.add_argument("--wrist", action="store_true", help="read the wrist camera as a second view")
    parser.add_argument("--steps", type=int, default=200, help="training-set steps to time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        bags = args.bags
        if not bags:
            record_demonstrations(
                Path(tmp) / "pp",
                tasks=["pick_place"],
                episodes=4,
                image_size_px=224,
                progress=False,
                wrist_camera=True,
            )
            bags, args.wrist = sorted((Path(tmp) / "pp").iterdir()), True
        topics = TopicConfig(extra_cameras=(WRIST_CAMERA_TOPIC,) if args.wrist else ())
        keep = CleaningConfig(drop_noop_steps=False, outlier_iqr_k=None, min_steps=1)
        sync = SyncConfig(control_rate_hz=10.0)
        write_tokenizer(Path(tmp) / "tok")
        tokenizer = PromptTokenizer.from_dir(Path(tmp) / "tok")
        rows: dict[bool, list] = {}
        datasets = {}
        for packed in (False, True):
            start = time.perf_counter()
            episodes = load_episodes(bags, topics, sync, keep, pack_images=packed)[0]
            read_s = time.perf_counter() - start
            frames = [im for e in episodes for im in e.images]
            frames += [v for e in episodes for views in e.step_data.get("extra_views", []) for v in views]
            held = sum(f.nbytes for f in frames)
            data = ActionTokenDataset(
                episodes,
                ImageProcessor(image_size_px=224),
                tokenizer,
                ActionTokenizer(vocab_size=tokenizer.base_vocab_size),
                ActionStatistics.from_norm_stats(compute_dataset_statistics(episodes)),
                train=True,
                mirror=True,
            )
            datasets[packed] = data
            rows[packed] = [len(data), held, read_s]
        # Alternate the two, after a warm-up pass, and keep each one's best of three: the machine is shared.
        index = np.random.default_rng(0).integers(0, len(datasets[False]), args.steps)
        times: dict[bool, list[float]] = {False: [], True: []}
        for rep in range(4):
            for packed in (False, True):
                start = time.perf_counter()
                for i in index:
                    datasets[packed].pixel_values(int(i))
                if rep:
                    times[packed].append((time.perf_counter() - start) / args.steps * 1e3)
        for packed in (False, True):
            rows[packed].append(min(times[packed]))
    print(f"{len(bags)} bags, {rows[False][0]} steps, {1 + int(args.wrist)} view(s) per step")
    print(f"{'frames':8} {'MB held':>9} {'kB/step':>8} {'read s':>7} {'ms/step':>8}")
    for packed, (n, held, read_s, step_ms) in rows.items():
        name = "packed" if packed else "decoded"
        print(f"{name:8} {held / 1e6:9.1f} {held / n / 1e3:8.1f} {read_s:7.1f} {step_ms:8.2f}")
    (_, h0, r0, s0), (_, h1, r1, s1) = rows[False], rows[True]
    print(f"packed / decoded: memory {h1 / h0:.3f}, read time {r1 / r0:.2f}, time per step {s1 / s0:.2f}")


if __name__ == "__main__":
    main()
