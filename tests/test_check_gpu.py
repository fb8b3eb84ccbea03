"""scripts/check_gpu.sh in its CPU dry mode: the CPU references of both stages, the two-process gather on gloo and
`accelerate launch --cpu` of both stages pass; every CUDA-only check is skipped with its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_check_gpu_dry_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    result = subprocess.run(
        [str(ROOT / "scripts" / "check_gpu.sh"), "--dry-run", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = {row["check"]: row for row in json.loads((tmp_path / "check_gpu.json").read_text())}
    passed = {name for name, row in rows.items() if row["status"] == "PASS"}
    assert {
        "tiny data",
        "stage1 Trainer on CPU (reference)",
        "stage2 Trainer on CPU (reference)",
        "HN-NCE gathered negatives (CPU)",
        "pipeline on CPU (reference)",
        "stage1 through accelerate launch (cpu)",
        "stage2 through accelerate launch (cpu)",
    } <= passed
    skipped = {name for name, row in rows.items() if row["status"] == "SKIP"}
    assert {f"stage{s} Trainer on CUDA {p}" for s in (1, 2) for p in ("fp32", "bf16", "fp16")} <= skipped
    assert {
        "extraction on CUDA",
        "pipeline on CUDA",
        "FAISS on the GPU",
        "model benchmark (AIM ViT-B/16, 12 frames, 224 px)",
    } <= skipped
    assert all(rows[name]["detail"] for name in skipped)
    for name in skipped:
        assert f"SKIP {name}: " in result.stdout
    # accelerate launch trained exactly like the in-process run (same device, same seed): equal losses
    launched = json.loads((tmp_path / "stage2-accelerate-cpu" / "log_history.json").read_text())
    direct = json.loads((tmp_path / "stage2-cpu-fp32" / "log_history.json").read_text())
    assert [h["loss"] for h in launched if "loss" in h] == pytest.approx(
        [h["loss"] for h in direct if "loss" in h], rel=1e-5
    )
    assert "0 failed" in result.stdout
