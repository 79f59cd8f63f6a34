"""``vla-ros demo``: the product's main job in three short episodes, every stage a real ROS node.

The operator's vague words (English, Chinese, and a request that needs a question answered) go through
the disambiguation node to the OpenVLA policy node (the shipped checkpoint) to the safety controller
and the simulated workcell. The words are generated from each episode's layout by the study's
operator (:mod:`vla_ros.eval.study`), so they name what is really on the table; the same scripted
operator answers the clarification question from the ground truth, in the question's language.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vla_ros.cli.arguments import positive_int
from vla_ros.cli.model import add_center_crop_argument

# (request kind, layout seed, label): move_to, the learned task whose places the resolver names.
# Seeds are held-out layouts (100000 on, never recorded for training).
DEMO_EPISODES: tuple[tuple[str, int, str], ...] = (
    ("synonym", 100006, "English, another word for the place"),
    ("chinese", 100001, "Chinese"),
    ("ambiguous", 100000, "English, needs a clarification"),
)


# Controller output flags of the stop and wait between episodes, not of the policy's commands.
_BETWEEN_EPISODES = frozenset({"no_command", "estop_latched", "first_output"})


@dataclass
class _ControllerCounts:
    accepted: int
    flags: dict[str, int]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="vague operator words -> disambiguation node -> OpenVLA policy node -> controller -> sim, "
        "three short episodes (English, Chinese, one clarification)",
        description=__doc__,
    )
    p.add_argument(
        "--model", type=Path, default=Path("models/sim_policy"), help="OpenVLA checkpoint directory"
    )
    p.add_argument(
        "--quantization",
        choices=("none", "8bit", "4bit"),
        default="4bit",
        help="policy weights: bitsandbytes 4bit (NF4, the default), 8bit, or none (the default precision: "
        "auto, fp32 on the CPU)",
    )
    p.add_argument(
        "--policy", choices=("model", "expert"), default="model", help="expert: the scripted expert"
    )
    add_center_crop_argument(p)
    p.add_argument("--out", type=Path, default=Path("artifacts/demo"), help="bags, picture strips and GIFs")
    p.add_argument(
        "--max-steps", type=positive_int, default=60, help="policy steps before an episode is failed"
    )
    p.set_defaults(func=run)


def _controller_counts(loop) -> _ControllerCounts:
    from vla_ros.nodes.common import now_s

    with loop.controller._lock:
        status = loop.controller.core.status(now_s(loop.controller))
    return _ControllerCounts(status.commands_accepted, dict(status.output_flag_counts))


def _ascii(text: str) -> str:
    """Chinese as pinyin, for captions drawn with a font that has no CJK glyphs."""
    from pypinyin import lazy_pinyin

    return " ".join(lazy_pinyin(text)) if any("\u4e00" <= c <= "\u9fff" for c in text) else text


def run(args: argparse.Namespace) -> int:
    from vla_ros.eval.study import requests_for
    from vla_ros.nodes.closed_loop import ClosedLoop, ClosedLoopOptions, Dialogue
    from vla_ros.sim.closed_loop import captioned_strip, save_pictures

    if args.policy == "model" and not (args.model / "config.json").is_file():
        print(
            f"{args.model} is not a checkpoint directory (no config.json): pass --model DIR", file=sys.stderr
        )
        return 2
    if args.out.exists() and any(args.out.glob("episode_*")):
        print(f"{args.out} holds an earlier demo: delete it or pass --out DIR", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    options = ClosedLoopOptions(
        policy=args.policy,
        model_dir=str(args.model),
        quantization=args.quantization,
        center_crop=args.center_crop,
        max_steps=args.max_steps,
        keep_frames=True,
    )
    setup_start = time.perf_counter()
    successes = 0
    with ClosedLoop(options, task="move_to", seed=DEMO_EPISODES[0][1]) as loop:
        print(f"policy node: {loop.policy_label}")
        print(
            "disambiguation node: config/disambiguation.yaml + disambiguation_sim.yaml "
            "(forwards 'move to {target}')"
        )
        print(f"set-up {time.perf_counter() - setup_start:.1f} s\n")
        run_start = time.perf_counter()
        for i, (kind, seed, label) in enumerate(DEMO_EPISODES):
            chosen: dict = {}

            def words(task, layout, kind=kind, seed=seed, chosen=chosen) -> str:
                chosen["request"] = next(r for r in requests_for(task, layout, seed) if r.kind == kind)
                chosen["layout"] = layout
                return chosen["request"].text

            def answer(question: str, chosen=chosen) -> str:
                return chosen["request"].answer(question)

            dialogue = Dialogue()
            before = _controller_counts(loop)
            bag = args.out / f"episode_{i:03d}"
            report, recording = loop.run_episode(
                i, seed, "move_to", words, bag_path=bag, answer=answer, dialogue=dialogue
            )
            after = _controller_counts(loop)
            request, layout = chosen["request"], chosen["layout"]
            print(f"episode {i} ({label}), layout seed {seed}")
            print(f"  on the table:    parts {', '.join(p.name for p in layout.parts)}; places "
                  f"{', '.join(loc.name for loc in layout.locations)}")  # fmt: skip
            print(f"  operator:        {request.text!r} (means the {request.target_id})")
            for question, reply in zip(dialogue.turns[::2], dialogue.turns[1::2], strict=True):
                print(f"  disambiguation:  asks {question!r}")
                print(f"  operator:        answers {reply!r}")
            if report.instruction:
                print(f"  disambiguation:  forwards {report.instruction!r}")
            else:
                print(f"  disambiguation:  forwarded nothing ({report.resolution})")
            # What the safety filter changed while the policy acted (not the stop between episodes).
            flags = {
                k: v - before.flags.get(k, 0)
                for k, v in after.flags.items()
                if v - before.flags.get(k, 0) and k not in _BETWEEN_EPISODES
            }
            print(f"  policy node:     {report.steps} OpenVLA steps")
            print(f"  controller:      {after.accepted - before.accepted} commands accepted"
                  + (f"; safety filter: {flags}" if flags else "; none limited"))  # fmt: skip
            outcome = "SUCCESS" if report.success else "FAILURE"
            print(f"  sim:             {outcome} (target {request.target_id}) after {report.steps} steps "
                  f"({report.sim_time_s:.1f} s sim, {report.wall_time_s:.1f} s wall)")  # fmt: skip
            caption = (
                f"{_ascii(request.text)} -> {report.instruction or report.resolution} ({outcome.lower()})"
            )
            strip = args.out / f"episode_{i:03d}_strip.png"
            if recording.frames:
                from PIL import Image

                Image.fromarray(captioned_strip(recording.frames, caption)).save(strip)
                save_pictures(recording.frames, args.out / f"episode_{i:03d}.gif")
            print(f"  left:            {bag} (rosbag2), {strip.name}, episode_{i:03d}.gif\n")
            successes += report.success
        elapsed = time.perf_counter() - run_start
    print(f"{successes}/{len(DEMO_EPISODES)} episodes succeeded; episodes took {elapsed:.1f} s after set-up")
    print(f"policy: {loop.policy_label}")
    return 0 if successes == len(DEMO_EPISODES) else 1
