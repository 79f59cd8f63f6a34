"""benchmarks/bench_serve.py runs end to end on a short setting (two arms, one second a row, both
payloads), so the serving benchmark cannot rot between the sessions that run it for its numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_serving_benchmark_measures_both_payloads_with_batching_on_and_off():
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_serve.py"),
            *("--arms", "2", "--seconds", "1", "--repeats", "1", "--model-alone-s", "0.2"),
            *("--payload", "json/png", "--payload", "msgpack/raw"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"model alone, predict_actions: batch 1 [\d.]+ actions/s", run.stdout), run.stdout
    for payload in ("json/png", "msgpack/raw"):
        for batching in ("on", "off"):
            row = next(
                line for line in run.stdout.splitlines() if line.startswith(f"{payload:<12} {batching} ")
            )
            _, _, arms, actions_per_s, *_, errors = row.split("|")[0].split()
            assert int(arms) == 2 and float(actions_per_s) > 0 and int(errors) == 0, row
        assert re.search(rf"{payload}: batched / unbatched throughput at 2 arms: [\d.]+x", run.stdout)
