"""Smoke tests of the benchmark scripts in `scripts/bench/` (tiny sizes) and of their shared helpers."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "scripts" / "bench"
if str(BENCH) not in sys.path:  # as when a benchmark runs: its folder first on sys.path, for `benchmarking`
    sys.path.insert(0, str(BENCH))

from benchmarking import (  # noqa: E402
    BenchmarkReport,
    PeakMemory,
    Timing,
    format_bytes,
    format_table,
    time_call,
    write_json,
)


def load_bench(name: str):
    """Imports `scripts/bench/<name>.py` by path (the folder is not a package), to call its `main(argv)`."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(name: str, tmp_path: Path, *args: str) -> tuple[int, dict]:
    output = tmp_path / f"{name}.json"
    code = load_bench(name).main([*args, "--output", str(output)])
    return code, json.loads(output.read_text())


def _assert_report(report: dict, name: str) -> None:
    for key in ("name", "command", "settings", "machine", "results", "checks", "targets", "wall_time_s", "passed"):
        assert key in report, key
    assert report["name"] == name
    assert report["machine"]["nproc"] >= 1 and report["machine"]["torch"]
    assert report["checks"] and all(check["passed"] for check in report["checks"].values()), report["checks"]
    assert report["passed"] is True
    for target in report["targets"].values():
        assert set(target) == {"value", "target", "met"}


# ----------------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------------


def test_time_call_counts_warmup_and_repeats():
    calls = []
    timing, result = time_call(lambda: calls.append(1) or len(calls), repeats=3, warmup=2)
    assert len(calls) == 5 and result == 5
    assert len(timing.times) == 3 and timing.warmup == 2
    assert timing.best <= timing.median <= max(timing.times)
    assert Timing([3.0, 1.0, 2.0]).to_dict()["median_s"] == 2.0
    with pytest.raises(ValueError):
        time_call(lambda: None, repeats=0)


def test_peak_memory_sees_a_temporary_allocation():
    size = 64 * 2**20
    with PeakMemory() as memory:
        block = np.ones(size, dtype=np.uint8)  # touched: resident
        del block
    assert memory.delta_bytes >= 0.9 * size
    assert memory.peak_bytes >= memory.end_bytes
    assert memory.to_dict()["method"] in ("vmhwm", "sampling")


def test_format_table_and_json(tmp_path):
    table = format_table([{"a": 1.23456, "b_bytes": 3 * 2**20, "c": True}, {"a": float("nan"), "c": False}])
    lines = table.splitlines()
    assert lines[0] == "| a | b_bytes | c |" and lines[1] == "|---|---|---|"
    assert lines[2] == "| 1.235 | 3.0 MiB | yes |" and lines[3] == "| n/a |  | no |"
    assert format_bytes(512) == "512 B" and format_bytes(1536) == "1.5 KiB"
    path = write_json(tmp_path / "x" / "r.json", {"v": float("inf"), "n": np.float32(0.5), "t": Timing([1.0])})
    data = json.loads(path.read_text())
    assert data["v"] is None and data["n"] == 0.5 and data["t"]["best_s"] == 1.0


def test_report_passes_only_when_every_check_passes():
    report = BenchmarkReport("x", "cmd", {}, machine={})
    report.add_check("a", True)
    report.add_target("speed", 2.0, ">= 5x", False)
    assert report.passed
    report.add_check("b", False, detail=1)
    assert not report.passed
    assert any("NOT met" in line for line in report.summary_lines())


# ----------------------------------------------------------------------------------------------------------------------
# Scripts at tiny sizes
# ----------------------------------------------------------------------------------------------------------------------

TINY_RETRIEVAL = (
    "--queries",
    "40",
    "--gallery",
    "3000",
    "--dim",
    "32",
    "--top-k",
    "10",
    "--repeats",
    "1",
    "--faiss-gallery",
    "4000",
    "--faiss-queries",
    "40",
    "--exact-queries",
    "20",
    "--nlist",
    "16",
    "--nprobe",
    "4",
    "--faiss-clusters",
    "20",
)


def test_bench_retrieval(tmp_path):
    code, report = _run("retrieval", tmp_path, *TINY_RETRIEVAL)
    assert code == 0
    _assert_report(report, "retrieval")
    check = report["checks"]["exact_rankings_equal_official"]
    assert check["rows"] == 40 and check["own_video_never_returned"]
    methods = [row["method"] for row in report["results"]["exact"]["rows"]]
    assert any(m.startswith("official") for m in methods) and any(m.startswith("ours") for m in methods)
    assert report["results"]["exact"]["speedup_vs_official"] > 0
    # FAISS's exact IndexFlatIP is timed side by side and ranks the same as ours.
    assert any(m.startswith("faiss IndexFlatIP") for m in methods)
    assert report["checks"]["exact_rankings_equal_faiss_flat"]["rows"] == 40
    assert "exact_time_vs_faiss_flat" in report["targets"]
    faiss = report["results"]["faiss"]
    assert 0.0 <= faiss["recall@k"] <= 1.0 and faiss["time_vs_exact"] > 0
    assert faiss["copies_made_by_RetrievalIndex"] > 0  # at this size the ids, not the vectors, dominate the memory
    assert {"exact_time_vs_bare_product", "exact_speedup_vs_official", "faiss_recall@10"} <= set(report["targets"])


def test_bench_retrieval_fails_when_rankings_differ(tmp_path, monkeypatch):
    module = load_bench("retrieval")
    official = module.official_search
    monkeypatch.setattr(module, "official_search", lambda *args: official(*args)[:, ::-1].copy())  # wrong order
    output = tmp_path / "r.json"
    assert module.main([*TINY_RETRIEVAL, "--skip-faiss", "--output", str(output)]) == 1
    assert json.loads(output.read_text())["passed"] is False


def test_bench_ingest(tmp_path):
    code, report = _run(
        "ingest",
        tmp_path,
        "--synthetic-clips",
        "6",
        "--large-clips",
        "2",
        "--large-size",
        "64",
        "--large-frames",
        "12",
        "--num-frames",
        "4",
        "--batch-size",
        "2",
        "--workers",
        "0,1",
        "--repeats",
        "1",
        "--profile-clips",
        "2",
    )
    assert code == 0
    _assert_report(report, "ingest")
    rows = report["results"]["rows"]
    assert {row["set"] for row in rows} == {"synthetic", "64px"} and {row["workers"] for row in rows} == {0, 1}
    assert all(row["clips_per_s"] > 0 and math.isclose(row["frames_per_s"], 4 * row["clips_per_s"]) for row in rows)
    assert set(report["results"]["breakdown"]) == {"synthetic", "64px"}
    assert "synthetic_workers1_ours_vs_raw" in report["targets"]
    backends = report["results"]["backends"]
    assert [row["backend"] for row in backends[:4]] == [
        "decord",
        "torchcodec",
        "pyav",
        "datasets Video column (torchcodec)",
    ]
    assert all(row["max_pixel_difference_to_decord"] == 0 and row["frames_per_s"] > 0 for row in backends)
    assert report["checks"]["64px_pyav_pixels_match_decord"]["passed"]


def test_bench_train(tmp_path):
    code, report = _run(
        "train",
        tmp_path,
        "--quick",
        "--triplets",
        "600",
        "--unique-texts",
        "120",
        "--videos",
        "100",
        "--batch-size",
        "32",
        "--embed-dim",
        "32",
        "--steps",
        "1",
        "--official-steps",
        "1",
    )
    assert code == 0
    _assert_report(report, "train")
    rows = {row["loop"]: row for row in report["results"]["rows"]}
    assert len(rows) == 4
    ours = rows["ours: cached text features (Trainer step)"]
    assert ours["first_epoch_s"] > ours["epoch_s"] > 0 and ours["cache_once_s"] > 0
    losses = report["checks"]["first_step_loss_equal"]["losses"]
    assert len(set(round(v, 4) for v in losses.values())) == 1
    assert report["results"]["steps_per_epoch"] == math.ceil(600 / 32)


def test_bench_train_texts_are_distinct():
    module = load_bench("train")
    texts = module.modification_texts(2000, seed=0)
    assert len(texts) == len(set(texts)) == 2000
    assert texts == module.modification_texts(2000, seed=0)


def test_bench_model(tmp_path):
    code, report = _run("model", tmp_path, "--quick", "--num-frames", "4", "--repeats", "1", "--no-gpu")
    assert code == 0
    _assert_report(report, "model")
    rows = report["results"]["rows"]
    assert [row["attention"] for row in rows] == ["sdpa", "eager"]
    assert all(row["s_per_clip"] > 0 and row["peak_memory_bytes"] >= 0 for row in rows)
    assert report["checks"]["cpu_float32_sdpa_equals_eager"]["max_abs_difference"] < 1e-4
