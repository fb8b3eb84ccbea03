"""Console output of both training stages: one progress bar per training run and one short line per epoch,
instead of `Trainer`'s dictionaries of every logged value and a new bar for each evaluation."""

from __future__ import annotations

from transformers import PrinterCallback, ProgressCallback, Trainer, TrainerCallback

# Logged keys shown in the per-epoch line, in this order, with their short names; accuracies are shown in percent.
_SHOWN = (
    ("loss", "loss"),
    ("eval_loss", "val loss"),
    ("eval_accuracy", "val acc"),
    ("eval_map@10", "val mAP@10"),
    ("eval_map@50", "val mAP@50"),
)


def format_epoch_line(logs: dict, epoch: float | None, num_epochs: float) -> str | None:
    """`epoch  3/40  loss 1.234  val acc 56.2 %` from one `Trainer` log entry, or `None` when the entry holds
    none of the shown values (e.g. the run summary)."""
    parts = []
    for key, name in _SHOWN:
        value = logs.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{name} {100 * value:.1f} %" if key == "eval_accuracy" else f"{name} {value:.4g}")
    if not parts:
        return None
    width = len(f"{num_epochs:g}")
    position = f"epoch {epoch:>{width}.0f}/{num_epochs:g}" if epoch is not None else "start"
    return "    " + "  ".join([position, *parts])


class CompactProgressCallback(TrainerCallback):
    """A single training bar (none with `disable_tqdm`), no bars for evaluations, and one compact line per epoch:
    the training loss is held back until the epoch's evaluation, when there is one, and printed with it."""

    def __init__(self):
        self.bar = None
        self.pending: tuple[dict, float | None] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and not args.disable_tqdm:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, dynamic_ncols=True, leave=False, unit="step")

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        epoch = logs.get("epoch", state.epoch) if state.global_step else None
        evaluating = str(getattr(args.eval_strategy, "value", args.eval_strategy)) == "epoch"
        if "loss" in logs and evaluating:
            self._flush(args)
            self.pending = (dict(logs), epoch)  # printed with this epoch's evaluation
            return
        if self.pending is not None and any(key.startswith("eval_") for key in logs) and self.pending[1] == epoch:
            logs, self.pending = {**self.pending[0], **logs}, None
        self._flush(args)
        self._write(format_epoch_line(logs, epoch, args.num_train_epochs))

    def _flush(self, args) -> None:
        if self.pending is not None:
            logs, epoch = self.pending
            self.pending = None
            self._write(format_epoch_line(logs, epoch, args.num_train_epochs))

    def _write(self, line: str | None) -> None:
        if line is None:
            return
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def on_train_end(self, args, state, control, **kwargs):
        self._flush(args)
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def use_compact_progress(trainer: Trainer) -> Trainer:
    """Replaces `Trainer`'s progress bar and log printer by [`CompactProgressCallback`]."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(CompactProgressCallback())
    return trainer


__all__ = ["CompactProgressCallback", "format_epoch_line", "use_compact_progress"]
