"""The main job over several seeds: per-seed rows and the robustness table (mean, min, max)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modeling_tfcovr.demo import format_robustness, seed_row, summarise

ROOT = Path(__file__).resolve().parents[1]
TFCOVR = [sys.executable, "-m", "modeling_tfcovr.commands"]  # the `tfcovr` program


def _metrics(temporal: float, single: float, text: float, accuracy: float, seconds: float) -> dict:
    results = {
        "tfcovr": {"map@10": temporal, "recall@10": temporal + 1},
        "tfcovr_single_frame": {"map@10": single, "recall@10": single + 1},
        "text_only": {"map@10": text, "recall@10": text + 1},
    }
    return {
        "results": results,
        "stage1": {"temporal": {"eval_accuracy": accuracy}, "single_frame": {"eval_accuracy": 0.2}},
        "timings_seconds": {"total": seconds},
    }


def test_summary_is_mean_min_max_of_every_metric_and_of_stage1_accuracy():
    rows = [
        seed_row(0, _metrics(80.0, 16.0, 7.0, 0.90, 300.0)),
        seed_row(1, _metrics(71.0, 20.0, 8.0, 0.85, 330.0)),
        seed_row(2, _metrics(89.0, 12.0, 5.0, 0.98, 320.0)),
    ]
    assert rows[1]["best_other_map@10"] == 20.0 and rows[1]["ratio_to_best_other"] == pytest.approx(71.0 / 20.0)
    summary = summarise(rows)
    assert summary["seeds"] == [0, 1, 2]
    assert summary["results"]["tfcovr"]["map@10"] == pytest.approx({"mean": 80.0, "min": 71.0, "max": 89.0})
    assert summary["results"]["text_only"]["recall@10"] == pytest.approx({"mean": 7.6666667, "min": 6.0, "max": 9.0})
    assert summary["stage1_accuracy"]["temporal"] == pytest.approx({"mean": 91.0, "min": 85.0, "max": 98.0})
    assert summary["ratio_to_best_other"]["min"] == pytest.approx(71.0 / 20.0)
    assert summary["seconds"]["max"] == 330.0
    table = format_robustness(rows, summary)
    assert "| 1 | 71.00 | 20.00 | 20.00 | 3.5x | 85.0 / 20.0 | 330 |" in table
    assert "| TF-CoVR-Base | 80.00 [71.00, 89.00] | 81.00 [72.00, 90.00] |" in table
    assert "| temporal | 91.0 | 85.0 | 98.0 |" in table
    assert "worst seed 3.5x" in table


@pytest.mark.slow
def test_quick_job_over_two_seeds_writes_the_robustness_table(tmp_path):
    result = subprocess.run(
        [*TFCOVR, "demo", "--quick", "--seeds", "3", "4", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    saved = json.loads((tmp_path / "robustness.json").read_text())
    assert [row["seed"] for row in saved["rows"]] == [3, 4]
    per_seed = [json.loads((tmp_path / f"seed-{s}" / "report" / "metrics.json").read_text()) for s in (3, 4)]
    for row, metrics in zip(saved["rows"], per_seed):
        assert row["results"] == metrics["results"] and metrics["config"]["seed"] == row["seed"]
    values = [m["results"]["tfcovr"]["map@10"] for m in per_seed]
    assert saved["summary"]["results"]["tfcovr"]["map@10"]["mean"] == pytest.approx(sum(values) / 2)
    assert "Mean [min, max] over 2 seeds" in (tmp_path / "robustness.md").read_text()


def test_collect_reads_the_finished_seeds_of_several_sweeps(tmp_path):
    from modeling_tfcovr.demo import collect_seeds

    for folder, seed, temporal in (("a", 0, 80.0), ("a", 1, 71.0), ("b", 7, 89.0)):
        report = tmp_path / folder / f"seed-{seed}" / "report"
        report.mkdir(parents=True)
        (report / "metrics.json").write_text(json.dumps(_metrics(temporal, 16.0, 7.0, 0.9, 300.0)))
    (tmp_path / "a" / "seed-2").mkdir()  # a seed still running: no metrics yet
    collected = collect_seeds([tmp_path / "a", tmp_path / "b"], tmp_path / "all")
    assert [row["seed"] for row in collected["rows"]] == [0, 1, 7]
    assert collected["summary"]["results"]["tfcovr"]["map@10"] == pytest.approx(
        {"mean": 80.0, "min": 71.0, "max": 89.0}
    )
    assert "over seeds 0, 1, 7" in (tmp_path / "all" / "robustness.md").read_text()
