"""Stage 1: fine-tune the AIM video encoder on fine-grained action classification with `Trainer`."""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import Trainer, TrainingArguments, set_seed

from ..errors import DataFormatError
from ..model_card import write_model_card
from ..model_presets import preset_config
from ..modeling_tfcovr import TFCoVRForVideoClassification, adapter_initialization
from ..video_io import DEFAULT_VIDEO_BACKEND, dataset_videos, resolve_relative_video_path
from ..video_processing_tfcovr import TFCoVRVideoProcessor
from .checkpoints import resolve_resume, write_log_history
from .data import VideoClipDataset, VideoCollator
from .freezing import set_trainable
from .progress import use_compact_progress
from .runtime import prepare_cpu_training

logger = logging.getLogger(__name__)


@dataclass
class ClassifierDataArguments:
    """Where the clips come from: a dataset folder with `clips/<split>.parquet` (the synthetic
    benchmark's layout: `video` paths relative to the folder, `label`, optional `label_id`), or
    CSV/parquet files with `video` and `label` columns plus a `video_root`."""

    dataset_dir: str | None = field(
        default=None, metadata={"help": "Folder (or hub dataset id) with clips/<split>.parquet and videos."}
    )
    dataset_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a hub dataset id."})
    train_file: str | None = field(
        default=None,
        metadata={
            "help": (
                "CSV or parquet with columns video, label; or a datasets folder (save_to_disk) whose video is a "
                "Video column."
            )
        },
    )
    eval_file: str | None = field(default=None, metadata={"help": "Like --train_file."})
    video_root: str | None = field(default=None, metadata={"help": "Folder the `video` paths are relative to."})
    train_split: str = "train"
    eval_split: str = "val"
    preload_videos: bool = field(default=True, metadata={"help": "Decode every clip once into memory."})
    video_backend: str = field(
        default=DEFAULT_VIDEO_BACKEND,
        metadata={
            "help": (
                "Decoder of video files: decord, torchcodec or pyav (a datasets Video column is read with torchcodec)."
            )
        },
    )
    max_train_samples: int | None = None
    max_eval_samples: int | None = None


@dataclass
class ClassifierModelArguments:
    """The model: continue from a TF-CoVR folder, start from a CLIP checkpoint, or build a named architecture
    (`--model_preset`, default AIM on CLIP ViT-B/16 at 224 px with 12 frames) with `--config_overrides`; and the
    training policy of its weights (which train, how the adapters start)."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "A TF-CoVR checkpoint folder or hub id."})
    clip_model_path: str | None = field(
        default=None, metadata={"help": "A transformers CLIP checkpoint (folder or hub id)."}
    )
    model_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a hub id."})
    model_preset: str = field(
        default="aim-vit-b16",
        metadata={
            "help": "Architecture preset (modeling_tfcovr/model_configs): aim-vit-b16, aim-vit-l14, synthetic-scratch."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Changes to the preset, 'key=value,...': fields of TFCoVRConfig or its vision_config "
            "(e.g. 'num_frames=8,hidden_size=256,num_attention_heads=4')."
        },
    )
    train_backbone: bool = field(
        default=False, metadata={"help": "Train all weights (for models trained from scratch)."}
    )
    adapter_init: str = field(
        default="zero",
        metadata={
            "help": "AIM's adapters and temporal embedding start at zero ('zero', AIM's recipe) or small and random "
            "('random', for models trained from scratch).",
            "choices": ["zero", "random"],
        },
    )


@dataclass
class ClassifierTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the AIM recipe as defaults (AdamW lr 3e-4, weight decay 0.05, cosine,
    2.5 warm-up epochs, evaluation and checkpoint every epoch, best model by accuracy)."""

    learning_rate: float = 3e-4
    weight_decay: float = 0.05
    lr_scheduler_type: str = "cosine"
    warmup_epochs: float = field(default=2.5, metadata={"help": "Linear warm-up length in epochs."})
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    save_total_limit: int | None = 2
    load_best_model_at_end: bool = True
    metric_for_best_model: str | None = "accuracy"
    remove_unused_columns: bool = False
    logging_strategy: str = "epoch"


def read_clip_table(path: str | os.PathLike) -> list[dict]:
    """Rows of a CSV or parquet clip table, or of a `datasets` folder (`save_to_disk`); requires `video` and `label`
    columns. A `datasets` `Video` column gives [`DatasetVideo`] values, read when the clip is."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        import datasets

        dataset = datasets.load_from_disk(str(path))
        missing = [c for c in ("video", "label") if c not in dataset.column_names]
        if missing:
            raise DataFormatError(f"{path}: missing column(s) {', '.join(missing)}")
        if isinstance(dataset.features["video"], datasets.Video):
            return [{"video": video, "label": label} for video, label in zip(dataset_videos(dataset), dataset["label"])]
        return dataset.remove_columns([c for c in dataset.column_names if c not in ("video", "label")]).to_list()
    table = pq.read_table(path) if path.suffix == ".parquet" else pa_csv.read_csv(path)
    missing = [c for c in ("video", "label") if c not in table.column_names]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {', '.join(missing)}")
    return table.to_pylist()


def load_clip_splits(data_args: ClassifierDataArguments) -> tuple[list[dict], list[dict] | None, Path]:
    """(train rows, eval rows, folder the video paths are relative to)."""
    if data_args.dataset_dir:
        root = dataset_root(data_args)
        train = read_clip_table(root / "clips" / f"{data_args.train_split}.parquet")
        eval_path = root / "clips" / f"{data_args.eval_split}.parquet"
        evaluation = read_clip_table(eval_path) if eval_path.exists() else None
        return train, evaluation, Path(data_args.video_root or root)
    if not data_args.train_file:
        raise ValueError("pass --dataset_dir, or --train_file (and --eval_file) with --video_root")
    train = read_clip_table(data_args.train_file)
    evaluation = read_clip_table(data_args.eval_file) if data_args.eval_file else None
    return train, evaluation, Path(data_args.video_root or Path(data_args.train_file).parent)


def dataset_root(data_args: ClassifierDataArguments) -> Path:
    """`--dataset_dir` as a local folder: itself, or the cached snapshot of a hub dataset repository (its clip
    tables and videos) at `--dataset_revision`."""
    from ..hub import resolve_folder

    return resolve_folder(data_args.dataset_dir, revision=data_args.dataset_revision, repo_type="dataset")


def label_maps(rows: list[dict], labels_file: Path | None = None) -> tuple[dict[int, str], dict[str, int]]:
    """`id2label`/`label2id` from `labels.json` when present, else from the sorted labels of `rows`."""
    if labels_file is not None and labels_file.exists():
        names = json.loads(labels_file.read_text())
    else:
        names = sorted({str(row["label"]) for row in rows})
    return dict(enumerate(names)), {name: index for index, name in enumerate(names)}


def build_classifier(model_args: ClassifierModelArguments, id2label: dict[int, str]) -> TFCoVRForVideoClassification:
    """The stage-1 model from `model_args` (see [`ClassifierModelArguments`]), with its weights' training policy set."""
    label2id = {name: index for index, name in id2label.items()}
    if model_args.model_name_or_path:
        model = TFCoVRForVideoClassification.from_pretrained(
            model_args.model_name_or_path,
            id2label=id2label,
            label2id=label2id,
            ignore_mismatched_sizes=True,
            revision=model_args.model_revision,
        )
    else:
        config = preset_config(
            model_args.model_preset, model_args.config_overrides, id2label=id2label, label2id=label2id
        )
        with adapter_initialization(model_args.adapter_init):
            if model_args.clip_model_path:
                model = TFCoVRForVideoClassification.from_clip_pretrained(
                    model_args.clip_model_path, config, revision=model_args.model_revision
                )
            else:
                model = TFCoVRForVideoClassification(config)
    set_trainable(model, backbone=model_args.train_backbone)
    return model


def accuracy_metrics(eval_prediction) -> dict[str, float]:
    """Top-1 and top-5 accuracy (0-1) from logits and labels."""
    logits = eval_prediction.predictions
    logits = logits[0] if isinstance(logits, (tuple, list)) else logits
    labels = np.asarray(eval_prediction.label_ids)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    return {
        "accuracy": float((top5[:, 0] == labels).mean()),
        "top5_accuracy": float((top5 == labels[:, None]).any(axis=1).mean()),
    }


def train_classifier(
    model_args: ClassifierModelArguments, data_args: ClassifierDataArguments, training_args: ClassifierTrainingArguments
) -> dict[str, float]:
    """Trains, keeps the best checkpoint by accuracy, saves model + video processor + model card in
    `training_args.output_dir`, and returns the final evaluation metrics."""
    set_seed(training_args.seed)  # the model is built before Trainer seeds: seed its initialisation too
    prepare_cpu_training(training_args)
    train_rows, eval_rows, video_root = load_clip_splits(data_args)
    labels_file = dataset_root(data_args) / "labels.json" if data_args.dataset_dir else None
    id2label, label2id = label_maps(train_rows + (eval_rows or []), labels_file)
    if data_args.max_train_samples:
        train_rows = train_rows[: data_args.max_train_samples]
    if eval_rows and data_args.max_eval_samples:
        eval_rows = eval_rows[: data_args.max_eval_samples]

    model = build_classifier(model_args, id2label)
    num_frames = model.config.vision_config.num_frames
    image_size = model.config.vision_config.image_size
    video_processor = TFCoVRVideoProcessor(
        num_frames=num_frames,
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        video_backend=data_args.video_backend,
    )

    def dataset(rows: list[dict], training: bool) -> VideoClipDataset:
        paths = [
            resolve_relative_video_path(video_root, row["video"]) if isinstance(row["video"], str) else row["video"]
            for row in rows
        ]
        labels = [label2id[str(row["label"])] for row in rows]
        return VideoClipDataset(
            paths,
            labels,
            num_frames,
            training=training,
            preload=data_args.preload_videos,
            backend=data_args.video_backend,
        )

    train_dataset = dataset(train_rows, training=True)
    eval_dataset = dataset(eval_rows, training=False) if eval_rows else None
    if eval_dataset is None:
        training_args.eval_strategy = "no"
        training_args.load_best_model_at_end = False
    if training_args.warmup_epochs and not training_args.warmup_steps:
        steps_per_epoch = math.ceil(
            len(train_dataset)
            / (
                training_args.train_batch_size
                * training_args.gradient_accumulation_steps
                * max(1, training_args.world_size)
            )
        )
        training_args.warmup_steps = int(training_args.warmup_epochs * steps_per_epoch)

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=VideoCollator(video_processor),
        compute_metrics=accuracy_metrics,
    )
    use_compact_progress(trainer)
    trainer.train(resume_from_checkpoint=resolve_resume(training_args))
    metrics = trainer.evaluate() if eval_dataset is not None else {}
    if trainer.is_world_process_zero():
        trainer.save_model(training_args.output_dir)
        write_log_history(trainer, training_args.output_dir)
        video_processor.save_pretrained(training_args.output_dir)
        write_model_card(
            training_args.output_dir,
            "classification",
            training_data=f"{len(train_dataset)} clips, {len(id2label)} fine-grained action labels"
            f" ({data_args.dataset_dir or data_args.train_file}).",
            metrics={
                k.removeprefix("eval_"): v * (100 if "accuracy" in k else 1)
                for k, v in metrics.items()
                if "accuracy" in k
            },
            base_model=[p for p in (model_args.model_name_or_path, model_args.clip_model_path) if p],
            datasets=data_args.dataset_dir,
            dataset_split=data_args.eval_split,
            dataset_name=Path(data_args.dataset_dir or data_args.train_file or "clips").name,
        )
    return metrics


__all__ = [
    "ClassifierDataArguments",
    "ClassifierModelArguments",
    "ClassifierTrainingArguments",
    "train_classifier",
    "build_classifier",
    "accuracy_metrics",
    "load_clip_splits",
]
