"""`vla-ros sim` argument handling (the closed loop itself is exercised in test_nodes_sim.py)."""

from __future__ import annotations

import argparse

from vla_ros.cli import sim as cli
from vla_ros.sim.closed_loop import EpisodeReport, format_report_table, picture_strip


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vla-ros")
    cli.register(parser.add_subparsers())
    return parser.parse_args(["sim", *argv])


def test_defaults_run_one_pick_place_episode_with_the_expert_into_mcap() -> None:
    args = _parse()
    assert (args.task, args.episodes, args.seed, args.policy, args.storage) == (
        "pick_place",
        1,
        0,
        "expert",
        "mcap",
    )
    assert args.func is cli.run


def test_model_policy_without_a_checkpoint_is_refused_before_anything_starts(capsys) -> None:
    assert cli.run(_parse("--policy", "model")) == 2
    assert "--model DIR" in capsys.readouterr().err


def test_an_existing_episode_bag_is_never_overwritten(tmp_path, capsys) -> None:
    (tmp_path / "episode_000").mkdir()
    assert cli.run(_parse("--record", str(tmp_path))) == 2
    assert "never overwritten" in capsys.readouterr().err


def test_report_table_summarises_success_per_task() -> None:
    reports = [
        EpisodeReport(
            0,
            0,
            "push",
            "push the red gear left",
            "push the red gear to the left",
            "resolved",
            True,
            20,
            2.0,
            2.5,
        ),
        EpisodeReport(1, 1, "push", "push it", "", "clarify", False, 0, 0.0, 0.3),
    ]
    table = format_report_table(reports)
    assert "push: 1/2 succeeded (50%)" in table
    assert "[clarify] push it" in table
    assert reports[0].policy_rate_hz == 10.0 and reports[1].policy_rate_hz == 0.0


def test_picture_strip_spaces_frames_from_first_to_last() -> None:
    import numpy as np

    frames = [np.full((4, 5, 3), i, dtype=np.uint8) for i in range(20)]
    strip = picture_strip(frames, max_frames=3)
    assert strip.shape == (4, 3 * 5 + 2 * 4, 3)
    assert [strip[0, 0, 0], strip[0, 9, 0], strip[0, 18, 0]] == [0, 10, 19]
