"""`tfcovr evaluate` (scripts/evaluate_retrieval.py) on a synthetic test split: TF-CoVR, baselines, zero-shot CLIP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import CLIPConfig, CLIPModel

import modeling_tfcovr as mt
from modeling_tfcovr.commands import load_command
from modeling_tfcovr.data.embeddings import write_embeddings_parquet
from modeling_tfcovr.data.synthetic import SyntheticConfig, build_synthetic_benchmark
from modeling_tfcovr.metrics import compute_retrieval_metrics
from modeling_tfcovr.modeling_zero_shot import ZeroShotCLIPComposer
from modeling_tfcovr.training.extract import embed_videos

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gym(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gym")
    config = SyntheticConfig(
        size=32,
        num_frames=8,
        apparatus=("floor", "beam"),
        rotations=(1.0, 2.0),
        train_clips_per_label=1,
        val_clips_per_label=1,
        test_clips_per_label=3,
    )
    build_synthetic_benchmark(folder, seed=1, config=config)
    return folder


def test_evaluate_writes_metrics_and_predictions(gym, tmp_path, tiny_config, tiny_processor):
    mt.TFCoVRModel(tiny_config).save_pretrained(tmp_path / "model")
    tiny_processor.save_pretrained(tmp_path / "model")
    report = load_command("evaluate").main(
        [
            "--model",
            str(tmp_path / "model"),
            "--triplets",
            str(gym),
            "--split",
            "test",
            "--video-root",
            str(gym / "videos"),
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(report))
    test_rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert metrics["num_queries"] == len(test_rows) > 0
    assert metrics["gallery_size"] == 16 * 3  # 16 labels x 3 clips: every test clip is some query's target
    assert set(metrics["results"]) == {"tfcovr", "text_only", "video_only", "average"}
    for method in metrics["results"].values():
        assert set(method) == {f"{m}@{k}" for m in ("map", "recall") for k in (5, 10, 25, 50)}
    assert metrics["model"] == str(tmp_path / "model") and metrics["data"]["split"] == "test"
    record = test_rows[0]
    assert set(record) >= {"query_id", "query_video", "modification", "valid_targets", "results"}
    assert len(record["results"]) == 47  # gallery minus the query's own video, capped at 50
    assert record["query_video"] not in [r["video_id"] for r in record["results"]]
    assert all(r["correct"] == (r["video_id"] in record["valid_targets"]) for r in record["results"])
    # the reported numbers are the metric of the written rankings
    recomputed = compute_retrieval_metrics(
        [[r["video_id"] for r in row["results"]] for row in test_rows],
        [row["valid_targets"] for row in test_rows],
        single_targets=[row["target_video"] for row in test_rows],
    )
    for key, value in recomputed.items():
        assert metrics["results"]["tfcovr"][key] == pytest.approx(value)


def test_zero_shot_clip_evaluation(gym, tmp_path, tiny_tokenizer):
    config = CLIPConfig(
        text_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            vocab_size=len(tiny_tokenizer),
            max_position_embeddings=32,
            bos_token_id=2,
            eos_token_id=3,
            pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(tmp_path / "clip")
    tiny_tokenizer.save_pretrained(tmp_path / "clip")
    report = load_command("evaluate").main(
        [
            "--zero-shot-clip",
            str(tmp_path / "clip"),
            "--num-frames",
            "4",
            "--triplets",
            str(gym),
            "--video-root",
            str(gym / "videos"),
            "--output-dir",
            str(tmp_path / "zs"),
        ]
    )
    assert set(report["results"]) == {"zero_shot_sum", "text_only", "video_only", "average"}
    # sum and average of two unit vectors point the same way: identical rankings and numbers
    assert report["results"]["zero_shot_sum"] == pytest.approx(report["results"]["average"])

    # From an embeddings dataset plus the text encoder: the same numbers without decoding a video.
    composer = ZeroShotCLIPComposer.from_pretrained(tmp_path / "clip")
    video_processor = mt.TFCoVRVideoProcessor(
        num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    paths = sorted((gym / "videos").glob("*.mp4"))
    ids, embeds, _ = embed_videos(
        composer.vision_model, video_processor, [p.stem for p in paths], [str(p) for p in paths]
    )
    write_embeddings_parquet(tmp_path / "clip_embeddings.parquet", ids, embeds)
    from_embeddings = load_command("evaluate").main(
        [
            "--zero-shot-clip",
            str(tmp_path / "clip"),
            "--triplets",
            str(gym),
            "--embeddings",
            str(tmp_path / "clip_embeddings.parquet"),
            "--output-dir",
            str(tmp_path / "zs-embeddings"),
        ]
    )
    for method, values in report["results"].items():
        assert from_embeddings["results"][method] == pytest.approx(values, abs=1e-4), method


def test_scripts_folder_on_the_path_does_not_hide_the_evaluate_library():
    """`python scripts/<x>.py` puts scripts/ first on sys.path, where a scripts/evaluate.py would stand in for the
    `evaluate` library that the metric module needs."""
    probe = (
        "import sys; sys.path.insert(0, 'scripts'); import evaluate; "
        "print(type(evaluate.load).__name__, evaluate.__file__)"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    kind, path = result.stdout.split()
    assert kind == "function" and Path(path).parts[-2:] == ("evaluate", "__init__.py")
    usage = subprocess.run(
        [sys.executable, "scripts/evaluate_retrieval.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert usage.returncode == 0 and "--triplets" in usage.stdout, usage.stderr[-2000:]
