"""The fault suite's quick subset (benchmarks/bench_faults.py --quick) finds nothing bad: every user error
of the command line and the loader is one clear line, and the running nodes survive and report bad
frames, instructions, commands, stamps and a killed publisher. The full suite and its table are the
benchmark's; this keeps it from rotting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_faults.py"


def test_the_quick_fault_suite_finds_no_crash_hang_silent_acceptance_or_traceback(tmp_path) -> None:
    out = tmp_path / "faults.json"
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    print(run.stdout)
    assert out.is_file(), f"the suite did not finish (exit {run.returncode}): {run.stderr[-3000:]}"
    report = json.loads(out.read_text())
    rows = report["rows"]
    bad = [
        r
        for r in rows
        if r["outcome"] in ("crash", "hang", "silent acceptance", "traceback", "unclear error")
    ]
    assert not bad, "\n".join(f"{r['area']} {r['name']}: {r['outcome']}: {r['detail']}" for r in bad)
    areas = {r["area"] for r in rows}
    assert areas == {"cli", "loader", "node"} and len(rows) >= 20, (areas, len(rows))
    assert run.returncode == 0, run.stderr[-3000:]
    # The watchdog stopped the arm after the command publisher was killed (how fast is the benchmark's).
    assert 0.0 < report["measurements"]["watchdog_latency_s"] < 5.0
