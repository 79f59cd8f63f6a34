"""benchmarks/bench_gpu.py runs end to end in its reduced mode (a tiny model on the CPU), so the GPU
benchmark cannot rot between the sessions that have a GPU to run it on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_reduced_mode_prints_every_mode_and_batch():
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--reduced", "--iterations", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    table = run.stdout[run.stdout.index("OpenVLA action steps on CPU") :]
    for mode in ("bf16 ", "bf16 + 8bit", "bf16 + 4bit-nf4"):
        row = next(line for line in table.splitlines() if line.startswith(mode))
        numbers = [float(x) for x in row[16:].split()]
        assert len(numbers) == 10, row  # steps/s, 4 stages, peak memory (nan on CPU), 3 batches, ratio
        # Prefill (index 3) is the first token's time less the vision time measured apart: a
        # difference, which a tiny model on a busy CPU can bring to zero, never below.
        assert all(n > 0 for i, n in enumerate(numbers) if i not in (3, 5)), row
        assert numbers[3] >= 0, row
