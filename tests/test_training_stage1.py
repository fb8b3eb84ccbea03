"""Stage 1 with Trainer on a tiny synthetic build, and embedding extraction into parquet shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import modeling_tfcovr as mt
from modeling_tfcovr.commands import load_command
from modeling_tfcovr.data.embeddings import read_embeddings
from modeling_tfcovr.data.synthetic import SyntheticConfig, build_synthetic_benchmark

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_gym(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gym")
    config = SyntheticConfig(
        size=16,
        num_frames=8,
        apparatus=("floor", "beam"),
        elements=("salto",),
        rotations=(1.0,),
        train_clips_per_label=4,
        val_clips_per_label=2,
        test_clips_per_label=2,
    )
    build_synthetic_benchmark(folder, seed=0, config=config)
    return folder


def test_stage1_trains_reports_accuracy_and_saves_a_loadable_model(tiny_gym, tmp_path):
    arguments = [
        "--dataset_dir",
        str(tiny_gym),
        "--output_dir",
        str(tmp_path / "s1"),
        "--config_overrides",
        "num_frames=4,image_size=16,patch_size=8,hidden_size=16,intermediate_size=32,num_hidden_layers=1,num_attention_heads=2",
        "--train_backbone",
        "--num_train_epochs",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--learning_rate",
        "1e-3",
        "--use_cpu",
        "--seed",
        "0",
        "--disable_tqdm",
        "True",
        "--save_strategy",
        "epoch",
    ]
    metrics = load_command("train-classifier").main(arguments)
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and "eval_top5_accuracy" in metrics
    labels = json.loads((tiny_gym / "labels.json").read_text())
    model = mt.TFCoVRForVideoClassification.from_pretrained(tmp_path / "s1")
    assert model.config.id2label == dict(enumerate(labels)) and model.config.vision_config.num_frames == 4
    processor = mt.TFCoVRVideoProcessor.from_pretrained(tmp_path / "s1")
    assert processor.num_frames == 4 and processor.crop_size["height"] == 16
    history = json.loads((tmp_path / "s1" / "log_history.json").read_text())
    assert [h["epoch"] for h in history if "eval_accuracy" in h][:2] == [1.0, 2.0]
    # the evaluation reproduces the reported accuracy from the saved model
    from modeling_tfcovr.training.data import VideoClipDataset, VideoCollator
    from modeling_tfcovr.training.stage1 import read_clip_table

    rows = read_clip_table(tiny_gym / "clips" / "val.parquet")
    dataset = VideoClipDataset([tiny_gym / r["video"] for r in rows], [r["label_id"] for r in rows], 4, training=False)
    batch = VideoCollator(processor)([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        predictions = model.eval()(batch["pixel_values_videos"]).logits.argmax(-1)
    assert (predictions == batch["labels"]).float().mean().item() == pytest.approx(metrics["eval_accuracy"], abs=1e-6)


def test_extraction_writes_shards_records_failures_and_matches_the_model(tiny_gym, tmp_path):
    encoder = mt.TFCoVRVisionModel(
        mt.TFCoVRVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
            num_frames=4,
        )
    )
    encoder.save_pretrained(tmp_path / "encoder")
    videos = sorted((tiny_gym / "videos").glob("*.mp4"))[:10]
    listing = tmp_path / "videos.txt"
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    listing.write_text("\n".join([str(p) for p in videos] + [str(tmp_path / "broken.mp4")]))
    result = load_command("extract-embeddings").main(
        [
            "--model",
            str(tmp_path / "encoder"),
            "--videos",
            str(listing),
            "--output",
            str(tmp_path / "emb"),
            "--shard-size",
            "4",
            "--num-workers",
            "0",
            "--device",
            "cpu",
        ]
    )
    assert result["shards_written"] == 3 and result["videos_embedded"] == 10 and result["failures_total"] == 1
    ids, embeds = read_embeddings(tmp_path / "emb")
    assert ids == [p.stem for p in videos] and embeds.shape == (10, 16)
    video_processor = mt.TFCoVRVideoProcessor(
        num_frames=4, size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
    )
    with torch.no_grad():
        expected = encoder.eval()(video_processor([str(p) for p in videos[:2]])["pixel_values_videos"]).pooler_output
    np.testing.assert_allclose(embeds[:2], expected.numpy(), atol=1e-5)
    failures = [
        json.loads(line)
        for f in sorted((tmp_path / "emb").glob("failures-*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert [f["video_id"] for f in failures] == ["broken"] and "broken.mp4" in failures[0]["error"]
    again = load_command("extract-embeddings").main(
        [
            "--model",
            str(tmp_path / "encoder"),
            "--videos",
            str(listing),
            "--output",
            str(tmp_path / "emb"),
            "--shard-size",
            "4",
            "--num-workers",
            "0",
        ]
    )
    assert again["shards_written"] == 0 and again["shards_skipped"] == 3
