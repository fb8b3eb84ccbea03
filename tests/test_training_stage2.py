"""Stage-2 training with Trainer: learning on a planted embedding world, and the distributed gather
(torchrun, 2 processes on gloo) against one process. Resuming after a SIGKILL: test_interrupted_jobs.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modeling_tfcovr.commands import load_command

from .training_fixtures import build_embedding_world, stage2_arguments

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_retrieval.py"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_embedding_world(tmp_path_factory.mktemp("world"))


def _history(output_dir: Path) -> list[dict]:
    return json.loads((output_dir / "log_history.json").read_text())


def test_stage2_loss_falls_and_validation_map_rises(world, tmp_path):
    metrics = load_command("train-retrieval").main(stage2_arguments(world, tmp_path / "run", eval_on_start=True))
    history = _history(tmp_path / "run")
    evaluations = [h for h in history if "eval_map@10" in h]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(evaluations) >= 13  # at start + every epoch
    assert losses[-1] < 0.6 * losses[0]
    assert evaluations[-1]["eval_map@10"] > evaluations[0]["eval_map@10"] + 10
    assert metrics["eval_map@10"] == pytest.approx(evaluations[-1]["eval_map@10"])
    # the saved folder is a complete model: weights, processor, card
    for name in (
        "model.safetensors",
        "config.json",
        "processor_config.json",
        "tokenizer.json",
        "README.md",
        "pipeline_tfcovr.py",
        "modeling_tfcovr.py",
    ):
        assert (tmp_path / "run" / name).exists(), name
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (
        config["custom_pipelines"]["composed-video-retrieval"]["impl"]
        == "pipeline_tfcovr.ComposedVideoRetrievalPipeline"
    )
    assert "val map@10" in (tmp_path / "run" / "README.md").read_text()


def _run(command: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kwargs)


def _train_one_process_with_the_double_batch(world, tmp_path: Path) -> dict:
    """Three steps of one process with 16 triplets into `tmp_path/one`; returns the settings the two-process run
    must share."""
    common = dict(
        max_steps=3,
        logging_strategy="steps",
        logging_steps=1,
        eval_strategy="no",
        num_train_epochs=1,
        learning_rate=1e-2,
    )
    single = _run(
        [
            sys.executable,
            str(SCRIPT),
            *stage2_arguments(world, tmp_path / "one", per_device_train_batch_size=16, **common),
        ],
        cwd=tmp_path,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    return common


def _assert_two_processes_trained_like_one(tmp_path: Path) -> None:
    """Every step's loss within 1e-5 and, with the same gradients at every step, the same weights after three
    optimizer steps (`tmp_path/one` against `tmp_path/two`)."""
    one_losses = [h["loss"] for h in _history(tmp_path / "one") if "loss" in h]
    two_losses = [h["loss"] for h in _history(tmp_path / "two") if "loss" in h]
    assert len(one_losses) == len(two_losses) == 3
    for a, b in zip(one_losses, two_losses):
        assert abs(a - b) < 1e-5, (one_losses, two_losses)
    one = load_file(tmp_path / "one" / "model.safetensors")
    two = load_file(tmp_path / "two" / "model.safetensors")
    for key in one:
        if key.startswith(("combiner.", "text_projection.")):
            torch.testing.assert_close(one[key], two[key], atol=1e-4, rtol=1e-3)  # float summation order differs


def test_two_processes_with_gathered_negatives_equal_one_process_with_twice_the_batch(world, tmp_path):
    common = _train_one_process_with_the_double_batch(world, tmp_path)
    double = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            str(SCRIPT),
            *stage2_arguments(world, tmp_path / "two", per_device_train_batch_size=8, ddp_backend="gloo", **common),
        ],
        cwd=tmp_path,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    _assert_two_processes_trained_like_one(tmp_path)


def test_accelerate_launch_two_cpu_processes_trains_like_one_process(world, tmp_path):
    # `accelerate launch --multi_gpu --num_processes 2` with `use_cpu` in the training arguments: two MULTI_CPU
    # processes over gloo (a config file with `distributed_type: MULTI_CPU` alone starts one process).
    common = _train_one_process_with_the_double_batch(world, tmp_path)
    launched = _run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            "29519",
            str(SCRIPT),
            *stage2_arguments(world, tmp_path / "two", per_device_train_batch_size=8, **common),
        ],
        cwd=tmp_path,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    # Equal losses at 8 triplets per process only if two processes ran, each seeing the other's negatives.
    _assert_two_processes_trained_like_one(tmp_path)


# A frozen text encoder with heavy dropout: in training mode every forward pass gives other features, so any place
# that computes cached text features outside evaluation mode makes the Trainer's numbers differ from evaluate.py's.
DROPOUT_TEXT_CONFIG = dict(
    model_type="bert",
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    max_position_embeddings=16,
    hidden_dropout_prob=0.5,
    attention_probs_dropout_prob=0.5,
)


def test_trainer_validation_equals_evaluate_script_on_the_saved_model(world, tmp_path):
    (tmp_path / "text.json").write_text(json.dumps(DROPOUT_TEXT_CONFIG))
    metrics = load_command("train-retrieval").main(
        stage2_arguments(
            world,
            tmp_path / "run",
            text_config_json=tmp_path / "text.json",
            train_text_encoder=False,
            num_train_epochs=2,
        )
    )
    saved = load_file(tmp_path / "run" / "model.safetensors")
    assert any(key.startswith("text_model.") for key in saved)  # the frozen text encoder is part of the model
    report = load_command("evaluate").main(
        [
            "--model",
            str(tmp_path / "run"),
            "--triplets",
            str(world["triplets"]),
            "--split",
            "val",
            "--embeddings",
            str(world["embeddings"]),
            "--output-dir",
            str(tmp_path / "eval"),
        ]
    )
    evaluated = report["results"]["tfcovr"]
    assert set(evaluated) == {f"{m}@{k}" for m in ("map", "recall") for k in (5, 10, 25, 50)}
    for key, value in evaluated.items():
        assert metrics[f"eval_{key}"] == pytest.approx(value, abs=1e-6), key


def test_frozen_encoders_stay_in_eval_mode_and_caching_restores_the_mode(world, tmp_path):
    from modeling_tfcovr.retrieval_evaluation import encode_texts
    from modeling_tfcovr.training.stage2 import RetrievalModelArguments, build_retrieval_model

    (tmp_path / "text.json").write_text(json.dumps(DROPOUT_TEXT_CONFIG))
    model, processor = build_retrieval_model(
        RetrievalModelArguments(
            vision_model_path=str(world["vision"]),
            text_config_json=str(tmp_path / "text.json"),
            config_overrides="combiner_projection_dim=8,combiner_hidden_dim=8",
        ),
        ["one more", "two more"],
    )
    model.train()
    assert model.training and model.combiner.training
    assert not model.text_model.training and not any(m.training for m in model.text_model.modules())
    assert not model.vision_model.training
    first = encode_texts(model, processor, ["one more", "two more"])
    # the same features twice, and those of the model in eval mode; the modes are as before
    torch.testing.assert_close(encode_texts(model, processor, ["one more", "two more"]), first, rtol=0, atol=0)
    assert model.training and model.combiner.training and not model.text_model.training
    with torch.no_grad():
        batch = processor(text=["one more", "two more"])
        model.eval()
        torch.testing.assert_close(
            model.encode_text(batch["input_ids"], batch["attention_mask"]), first, rtol=0, atol=0
        )
        # a text encoder left in training mode would draw dropout masks: other features (so the test can fail)
        model.text_model.train()
        noisy = model.encode_text(batch["input_ids"], batch["attention_mask"])
    assert (noisy - first).abs().max() > 1e-3
