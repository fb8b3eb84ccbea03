"""The main job end to end at tiny sizes (`scripts/demo.py --quick`): every step runs and the report
folder holds the documented files, with real PNG contact sheets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TFCOVR = [sys.executable, "-m", "modeling_tfcovr.commands"]  # the `tfcovr` program


@pytest.mark.slow
def test_quick_demo_writes_the_report(tmp_path):
    result = subprocess.run(
        [*TFCOVR, "demo", "--quick", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "| tfcovr |" in result.stdout and "| tfcovr_single_frame |" in result.stdout
    # console: no bar per load/save, no dictionaries of logged values, every stage header once
    assert "Loading weights" not in result.stderr + result.stdout
    assert "Writing model shards" not in result.stderr + result.stdout
    assert "{'loss'" not in result.stdout and "eval_samples_per_second" not in result.stdout
    assert all(result.stdout.count(f"=== {n}/6") == 1 for n in range(1, 7)), result.stdout
    assert "val acc" in result.stdout and "val mAP@10" in result.stdout
    report = tmp_path / "report"
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics["results"]) == {"tfcovr", "tfcovr_single_frame", "text_only", "video_only", "average"}
    assert metrics["timings_seconds"]["total"] > 0 and len(metrics["examples"]) == 2
    assert "| tfcovr |" in (report / "report.md").read_text()
    for example in metrics["examples"]:
        assert all(answer["label"] and answer["label"].count("/") == 3 for answer in example["answers"])
        with Image.open(report / example["contact_sheet"]) as sheet:
            assert sheet.format == "PNG" and sheet.width > 200 and sheet.height > 200
            colours = sheet.convert("RGB").getcolors(maxcolors=1 << 20)
            assert len(colours) > 50  # real frames, not a blank canvas
    model_dir = Path(metrics["model_dir"])
    assert json.loads((model_dir / "config.json").read_text())["custom_pipelines"]
    assert "pipeline_tag" in (model_dir / "README.md").read_text()
