"""scripts/push_to_hub.py --dry-run: exactly the files that would be uploaded, no network."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import DatasetCard, ModelCard

import modeling_tfcovr as mt
from modeling_tfcovr.commands import load_command, run
from modeling_tfcovr.data.tfcovr_csv import build_tfcovr_dataset
from modeling_tfcovr.errors import TFCoVRError
from modeling_tfcovr.model_card import CITATION, KNOWN_PIPELINE_TAGS, validate_card, write_model_card
from modeling_tfcovr.publishing import plan_upload

from .test_tfcovr_builder import _write_valid_csvs

ROOT = Path(__file__).resolve().parents[1]


def test_dry_run_lists_model_code_processor_and_card_only(tmp_path, tiny_config, tiny_processor, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "model"
    mt.save_for_pipeline(mt.TFCoVRModel(tiny_config), tiny_processor, folder)
    write_model_card(folder, "retrieval", training_data="tiny test data", metrics={"map@10": 12.5}, command="pytest")
    (folder / "checkpoint-10").mkdir()
    (folder / "checkpoint-10" / "optimizer.pt").write_bytes(b"x")
    (folder / "log_history.json").write_text("[]")
    assert load_command("push-to-hub").main([str(folder), "--repo-id", "ucf/tfcovr-base", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    expected = {p.name for p in folder.iterdir() if p.is_file()} - {"log_history.json"}
    assert listed == expected
    assert {
        "model.safetensors",
        "config.json",
        "README.md",
        "modeling_tfcovr.py",
        "configuration_tfcovr.py",
        "pipeline_tfcovr.py",
        "processor_config.json",
        "tokenizer.json",
    } <= listed
    assert "card: the Hub's metadata checks pass (run offline)" in out
    card = (folder / "README.md").read_text()
    front = yaml.safe_load(card.split("---", 2)[1])
    assert front["pipeline_tag"] == "feature-extraction" and "composed-video-retrieval" in front["tags"]
    assert front["model-index"][0]["results"][0]["metrics"] == [{"type": "map@10", "value": 12.5, "name": "mAP@10"}]
    assert "| map@10 | 12.50 |" in card and "2506.05274" in card


def test_incomplete_folders_are_refused(tmp_path, tiny_config):
    folder = tmp_path / "model"
    mt.TFCoVRModel(tiny_config).save_pretrained(folder)  # no model card
    with pytest.raises(TFCoVRError, match="README.md"):
        plan_upload(folder, "ucf/x")
    write_model_card(folder, "retrieval", training_data="x")
    (folder / "modeling_tfcovr.py").unlink()
    with pytest.raises(TFCoVRError, match="modeling_tfcovr.py"):
        plan_upload(folder, "ucf/x")


def test_dataset_folder_plan_needs_the_data_files_its_card_names(tmp_path):
    # The checked-in folder holds the card only: publishing it would give a dataset that does not load.
    with pytest.raises(TFCoVRError, match=r"data/train\.parquet, data/val\.parquet, data/test\.parquet"):
        plan_upload(ROOT / "hub_dataset", "ucf/tf-covr", repo_type="dataset")

    folder = tmp_path / "hub_dataset"
    shutil.copytree(ROOT / "hub_dataset", folder)
    build_tfcovr_dataset(_write_valid_csvs(tmp_path / "csvs"), folder)
    plan = plan_upload(folder, "ucf/tf-covr", repo_type="dataset")
    assert [name for name, _ in plan.files] == [
        "README.md",
        "build_report.json",
        "data/test.parquet",
        "data/train.parquet",
        "data/val.parquet",
    ]


def test_readme_and_cards_cite_the_paper_with_the_same_entry(tmp_path):
    model_card = write_model_card(tmp_path, "retrieval", training_data="x").read_text(encoding="utf-8")
    for text in (
        (ROOT / "README.md").read_text(encoding="utf-8"),
        (ROOT / "hub_dataset" / "README.md").read_text(encoding="utf-8"),
        model_card,
    ):
        assert CITATION in text


def test_model_card_metadata_is_what_the_hub_reads(tmp_path):
    metrics = {"official": {"test map@50": 25.82, "test map@10": 20.5}, "unique": {"test map@50": 31.25}}
    path = write_model_card(
        tmp_path,
        "retrieval",
        "the TF-CoVR triplets",
        metrics,
        command="pytest",
        model_id="ucf/tfcovr-base",
        base_model=["openai/clip-vit-base-patch16", str(tmp_path)],
        datasets="ucf-crcv/TF-CoVR",
        dataset_name="TF-CoVR",
    )
    text = path.read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---", 2)[1])
    assert front["pipeline_tag"] == "feature-extraction" and front["pipeline_tag"] in KNOWN_PIPELINE_TAGS
    assert front["library_name"] == "transformers" and front["license"] == "mit"
    assert front["base_model"] == "openai/clip-vit-base-patch16"  # the local path is not a Hub id: left out
    assert front["datasets"] == ["ucf-crcv/TF-CoVR"] and "composed-video-retrieval" in front["tags"]
    (entry,) = front["model-index"]
    assert entry["name"] == "tfcovr-base"
    (result,) = entry["results"]  # one task + dataset + split: one result holding every metric
    assert result["task"] == {"type": "feature-extraction", "name": "Composed Video Retrieval"}
    assert result["dataset"] == {"name": "TF-CoVR", "type": "ucf-crcv/TF-CoVR", "split": "test"}
    assert result["metrics"] == [
        {"type": "map@50", "value": 25.82, "name": "mAP@50 (official protocol)", "config": "official"},
        {"type": "map@10", "value": 20.5, "name": "mAP@10 (official protocol)", "config": "official"},
        {"type": "map@50", "value": 31.25, "name": "mAP@50 (unique protocol)", "config": "unique"},
    ]
    # huggingface_hub reads it back into the same EvalResults
    card = ModelCard.load(path)
    assert [(r.metric_type, r.metric_value, r.metric_config) for r in card.data.eval_results] == [
        ("map@50", 25.82, "official"),
        ("map@10", 20.5, "official"),
        ("map@50", 31.25, "unique"),
    ]
    assert 'pipeline("composed-video-retrieval", model="ucf/tfcovr-base", revision="main"' in text
    assert "| official | test map@50 | 25.82 |" in text and "| unique | test map@50 | 31.25 |" in text
    assert validate_card(path) == []


def test_stage1_card_is_video_classification_with_accuracy(tmp_path):
    path = write_model_card(
        tmp_path, "classification", "clips", {"accuracy": 92.4}, command="pytest", model_id="ucf/tfcovr-aim"
    )
    front = yaml.safe_load(path.read_text().split("---", 2)[1])
    assert front["pipeline_tag"] == "video-classification"
    assert front["model-index"][0]["results"][0]["metrics"] == [{"type": "accuracy", "value": 92.4, "name": "accuracy"}]
    assert validate_card(path) == []


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            ("pipeline_tag: feature-extraction", "pipeline_tag: composed-video-retrieval"),
            "pipeline_tag 'composed-video-retrieval' is not a pipeline tag the Hub knows",
        ),
        (("license: mit", "license: mit-ish"), "license 'mit-ish' is not a license id the Hub knows"),
        (("license: mit", "license: other"), "license 'other' needs license_name and license_link"),
        (
            ("    dataset:\n      name: TF-CoVR\n", "    dataset:\n"),
            "model-index result 1 needs a dataset with type and name",
        ),
        (
            ("    - type: map@10\n      value: 12.5\n", "    - type: map@10\n      value: [12.5]\n"),
            "metric 'map@10' has a value that is not a number",
        ),
        (("library_name: transformers", "library_name: [transformers"), "the YAML metadata does not parse"),
    ],
)
def test_cards_the_hub_would_refuse_are_refused_offline(tmp_path, tiny_config, tiny_processor, change, problem, capsys):
    folder = tmp_path / "model"
    mt.save_for_pipeline(mt.TFCoVRModel(tiny_config), tiny_processor, folder)
    write_model_card(
        folder, "retrieval", "x", {"test map@10": 12.5}, command="pytest", dataset_id="tf-covr", dataset_name="TF-CoVR"
    )
    card = folder / "README.md"
    text = card.read_text()
    assert change[0] in text
    card.write_text(text.replace(change[0], change[1], 1))
    assert any(problem in message for message in validate_card(card)), validate_card(card)
    assert run(load_command("push-to-hub").main, [str(folder), "--repo-id", "ucf/x", "--dry-run"]) == 1
    assert problem in capsys.readouterr().err


def test_dataset_cards_are_datasetcards_with_configs_and_features(tmp_path):
    # the TF-CoVR dataset card checked in, and a saved gallery's
    front = DatasetCard.load(ROOT / "hub_dataset" / "README.md").data.to_dict()
    assert [c["config_name"] for c in front["configs"]] == ["default"]
    assert [f["name"] for f in front["dataset_info"]["features"]] == [
        "query_id",
        "query_video",
        "query_label",
        "modification",
        "target_video",
        "target_videos",
        "target_label",
        "source",
    ]
    assert validate_card(ROOT / "hub_dataset" / "README.md", "dataset") == []

    gallery = mt.RetrievalIndex(
        ["a", "b", "c"], np.arange(12, dtype=np.float32).reshape(3, 4) + 1, paths=["a.mp4", None, "c.mp4"]
    )
    gallery.save_pretrained(tmp_path / "gallery", repo_id="ucf/tfcovr-gallery", model_id="ucf/tfcovr-base")
    assert sorted(
        p.relative_to(tmp_path / "gallery").as_posix() for p in (tmp_path / "gallery").rglob("*") if p.is_file()
    ) == ["README.md", "data/gallery.parquet", "retrieval_index_config.json"]
    card = DatasetCard.load(tmp_path / "gallery" / "README.md")
    data = card.data.to_dict()
    assert data["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/gallery.parquet"}]}
    ]
    assert data["dataset_info"]["features"] == [
        {"name": "video_id", "dtype": "string"},
        {"name": "embedding", "list": "float32", "length": 4},
        {"name": "path", "dtype": "string"},
    ]
    assert 'RetrievalIndex.from_pretrained("ucf/tfcovr-gallery", revision="main")' in card.text
    assert validate_card(tmp_path / "gallery" / "README.md", "dataset") == []
    plan = plan_upload(tmp_path / "gallery", "ucf/tfcovr-gallery", repo_type="dataset")
    assert [name for name, _ in plan.files] == ["README.md", "data/gallery.parquet", "retrieval_index_config.json"]

    loaded = mt.RetrievalIndex.from_pretrained(tmp_path / "gallery")
    assert loaded.video_ids == ("a", "b", "c") and loaded.paths == ("a.mp4", None, "c.mp4")
    expected = np.arange(12, dtype=np.float64).reshape(3, 4) + 1
    np.testing.assert_allclose(loaded.embeddings, expected / np.linalg.norm(expected, axis=1, keepdims=True), rtol=1e-6)
    import datasets

    table = datasets.load_dataset(str(tmp_path / "gallery"), split="train", cache_dir=str(tmp_path / "cache"))
    assert table["video_id"][:] == ["a", "b", "c"] and table.features["embedding"].length == 4


def test_a_gallery_saved_with_save_loads_with_from_pretrained_too(tmp_path):
    gallery = mt.RetrievalIndex(["x", "y"], np.eye(2, dtype=np.float32))
    gallery.save(tmp_path / "saved")
    loaded = mt.RetrievalIndex.from_pretrained(tmp_path / "saved")
    assert loaded.video_ids == ("x", "y") and loaded.is_memory_mapped


def test_a_gallery_config_naming_a_file_outside_its_folder_is_refused(tmp_path):
    import json

    mt.RetrievalIndex(["x", "y"], np.eye(2, dtype=np.float32)).save_pretrained(tmp_path / "g")
    config = json.loads((tmp_path / "g" / "retrieval_index_config.json").read_text())
    (tmp_path / "g" / "retrieval_index_config.json").write_text(json.dumps({**config, "data_file": "../x.parquet"}))
    with pytest.raises(mt.DataFormatError, match="outside its folder"):
        mt.RetrievalIndex.from_pretrained(tmp_path / "g")
