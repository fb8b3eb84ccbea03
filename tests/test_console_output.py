"""What the training runs print: one short line per epoch (not Trainer's dictionaries), and the labels that the
contact sheets write next to each result."""

from __future__ import annotations

import torch

from modeling_tfcovr.demo.pictures import describe_label
from modeling_tfcovr.training.progress import format_epoch_line


def test_epoch_line_is_short_and_shows_the_metrics_that_matter():
    logs = {"loss": 1.23456, "grad_norm": 3.2, "learning_rate": 0.0005, "epoch": 3.0}
    assert format_epoch_line(logs, 3.0, 40) == "    epoch  3/40  loss 1.235"
    evaluation = {
        "eval_loss": 0.51234,
        "eval_accuracy": 0.5625,
        "eval_top5_accuracy": 0.9,
        "eval_runtime": 0.23,
        "eval_samples_per_second": 206.1,
        "epoch": 40.0,
    }
    assert format_epoch_line(evaluation, 40.0, 40) == "    epoch 40/40  val loss 0.5123  val acc 56.2 %"
    retrieval = {"eval_loss": 9.344, "eval_map@5": 6.9, "eval_map@10": 9.348, "eval_map@50": 14.16, "epoch": 1.0}
    assert (
        format_epoch_line(retrieval, 1.0, 20) == "    epoch  1/20  val loss 9.344  val mAP@10 9.348  val mAP@50 14.16"
    )
    assert format_epoch_line({"train_runtime": 0.8, "train_loss": 3.2, "epoch": 1.0}, 1.0, 1) is None
    assert format_epoch_line({"eval_accuracy": 0.25}, None, 5) == "    start  val acc 25.0 %"


def test_labels_are_written_out():
    assert describe_label("floor/salto/1.5/cw") == "floor, salto, 1.5 turns, cw"
    assert describe_label("407c") == "407c"


class _Regression(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, labels=None):
        prediction = self.linear(inputs).squeeze(-1)
        return {"loss": torch.nn.functional.mse_loss(prediction, labels), "logits": prediction}


def test_trainer_prints_one_line_per_epoch(tmp_path, capsys):
    from transformers import Trainer, TrainingArguments

    from modeling_tfcovr.training.progress import use_compact_progress

    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(16, 2, generator=generator)
    rows = [{"inputs": x, "labels": x.sum()} for x in inputs]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=3,
        per_device_train_batch_size=8,
        eval_strategy="epoch",
        logging_strategy="epoch",
        save_strategy="no",
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = use_compact_progress(Trainer(model=_Regression(), args=args, train_dataset=rows, eval_dataset=rows))
    trainer.train()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [line.split("  loss")[0] for line in lines] == ["    epoch 1/3", "    epoch 2/3", "    epoch 3/3"], lines
    assert all("val loss" in line and "{" not in line for line in lines)
