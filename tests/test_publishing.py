"""scripts/push_to_hub.py --dry-run: exactly the files that would be uploaded, no network."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import modeling_tfcovr as mt
from modeling_tfcovr.data.tfcovr_csv import build_tfcovr_dataset
from modeling_tfcovr.errors import TFCoVRError
from modeling_tfcovr.model_card import CITATION, write_model_card
from modeling_tfcovr.publishing import plan_upload

from .conftest import load_script
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
    assert load_script("push_to_hub").main([str(folder), "--repo-id", "ucf/tfcovr-base", "--dry-run"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    expected = {p.name for p in folder.iterdir() if p.is_file()} - {"log_history.json"}
    assert listed == expected
    assert {"model.safetensors", "config.json", "README.md", "modeling_tfcovr.py", "configuration_tfcovr.py",
            "pipeline_tfcovr.py", "processor_config.json", "tokenizer.json"} <= listed
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: \"composed-video-retrieval\"" in card and "| map@10 | 12.50 |" in card and "2506.05274" in card


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
    assert [name for name, _ in plan.files] == ["README.md", "build_report.json", "data/test.parquet",
                                                "data/train.parquet", "data/val.parquet"]


def test_readme_and_cards_cite_the_paper_with_the_same_entry(tmp_path):
    model_card = write_model_card(tmp_path, "retrieval", training_data="x").read_text(encoding="utf-8")
    for text in ((ROOT / "README.md").read_text(encoding="utf-8"), (ROOT / "hub_dataset" / "README.md").read_text(encoding="utf-8"),
                 model_card):
        assert CITATION in text
