"""Stage 2: train the composed-query fusion (text projection + combiner) with HN-NCE and `Trainer`,
from precomputed video embeddings (the official way) or from raw videos through the processor."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, Trainer, TrainingArguments, set_seed

from ..data.embeddings import read_embeddings
from ..model_card import write_model_card
from ..model_presets import config_with_overrides
from ..modeling_tfcovr import TFCoVRModel, adapter_initialization
from ..pipeline_tfcovr import save_for_pipeline
from ..processing_tfcovr import TFCoVRProcessor
from ..retrieval_evaluation import (
    DEFAULT_K_VALUES,
    TripletSplit,
    cache_text_features,
    load_triplet_split,
    make_retrieval_compute_metrics,
)
from ..retrieval_index import RetrievalIndex
from ..tokenization_utils import build_word_level_tokenizer
from ..video_embedding import embed_videos
from ..video_io import check_video_backend, resolve_video_path
from ..video_processing_tfcovr import TFCoVRVideoProcessor
from .checkpoints import resolve_resume, write_log_history
from .data import EmbeddingTripletDataset, TripletCollator, VideoTripletDataset, rows_for_ids
from .freezing import set_trainable
from .progress import use_compact_progress
from .runtime import prepare_cpu_training

logger = logging.getLogger(__name__)


@dataclass
class RetrievalDataArguments:
    """Triplets (a dataset folder in the project's schema, e.g. `hub_dataset/` or a synthetic build)
    and either an embeddings dataset (video_id, embedding) or the folder of the videos."""

    triplets: str = field(metadata={"help": "Triplets dataset folder, parquet file or hub dataset id (load_dataset)."})
    triplets_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a hub dataset id."})
    embeddings: str | None = field(default=None, metadata={"help": "Embeddings parquet file or folder of shards."})
    video_root: str | None = field(default=None, metadata={"help": "Folder of <video_id>.mp4 (raw-video training)."})
    video_backend: str | None = field(
        default=None, metadata={"help": "Decoder of raw videos: decord, torchcodec or pyav (default: the processor's)."}
    )
    train_split: str = "train"
    eval_split: str = "val"
    max_train_samples: int | None = None
    max_eval_samples: int | None = None


@dataclass
class RetrievalModelArguments:
    """Where the model comes from: an existing TF-CoVR folder, or encoders to assemble it from."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A TFCoVRModel folder or hub id to continue from."}
    )
    model_revision: str | None = field(
        default=None, metadata={"help": "Branch, tag or commit of a hub id (all model paths)."}
    )
    vision_model_path: str | None = field(
        default=None, metadata={"help": "Stage-1 folder or transformers CLIP checkpoint (folder or hub id)."}
    )
    vision_model_revision: str | None = field(default=None, metadata={"help": "Revision of --vision_model_path."})
    text_model_path: str | None = field(
        default=None, metadata={"help": "A transformers text encoder (CLIP, BERT, MiniLM...), folder or hub id."}
    )
    text_model_revision: str | None = field(default=None, metadata={"help": "Revision of --text_model_path."})
    text_config_json: str | None = field(
        default=None, metadata={"help": "JSON of a text config to train from scratch, with a word-level tokenizer."}
    )
    train_text_encoder: bool = False
    adapter_init: str = field(
        default="zero",
        metadata={
            "help": "Initialisation of the video encoder's adapters before --vision_model_path's weights replace them "
            "('zero' or 'random'): it changes only the order of random draws, so pass the stage-1 run's value to "
            "reproduce a seeded run.",
            "choices": ["zero", "random"],
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Fields of TFCoVRConfig for a model assembled from encoders, 'key=value,...' (defaults: the "
            "paper's): combiner_projection_dim, combiner_hidden_dim, combiner_dropout, temperature, hn_nce_alpha, "
            "hn_nce_beta, hn_nce_variant ('paper', or 'official': the official code's loss bit for bit)."
        },
    )


@dataclass
class RetrievalTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the paper's stage-2 recipe as defaults (AdamW lr 1e-5, weight decay
    0.05, cosine, batch 512, model selection by validation mAP@50). Use `--fp16`/`--bf16` on GPUs."""

    learning_rate: float = 1e-5
    weight_decay: float = 0.05
    lr_scheduler_type: str = "cosine"
    per_device_train_batch_size: int = 512
    per_device_eval_batch_size: int = 512
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    save_total_limit: int | None = 2
    load_best_model_at_end: bool = True
    metric_for_best_model: str | None = "map@50"
    greater_is_better: bool | None = True
    remove_unused_columns: bool = False
    label_names: list[str] | None = field(default_factory=lambda: ["query_index"])
    logging_strategy: str = "epoch"
    k_values: str = field(default="5,10,25,50", metadata={"help": "Comma-separated K of mAP@K / Recall@K."})
    gather_across_processes: bool = field(
        default=True,
        metadata={
            "help": "In distributed training, gather the queries and targets of every process (with gradients) so that "
            "each sees the negatives of the global batch."
        },
    )


def build_retrieval_model(
    model_args: RetrievalModelArguments, train_texts: list[str]
) -> tuple[TFCoVRModel, TFCoVRProcessor]:
    """The stage-2 model and its processor, from `model_args` (see [`RetrievalModelArguments`])."""
    if model_args.model_name_or_path:
        model = TFCoVRModel.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision)
        set_trainable(model, vision_encoder=False, text_encoder=model_args.train_text_encoder)
        return model, TFCoVRProcessor.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision)

    vision_revision = model_args.vision_model_revision or model_args.model_revision
    text_revision = model_args.text_model_revision or model_args.model_revision
    if model_args.text_model_path:
        tokenizer = AutoTokenizer.from_pretrained(model_args.text_model_path, revision=text_revision)
        text_config = None
    elif model_args.text_config_json:
        tokenizer = build_word_level_tokenizer(train_texts)
        text_config = (
            json.loads(Path(model_args.text_config_json).read_text())
            if os.path.isfile(model_args.text_config_json)
            else json.loads(model_args.text_config_json)
        )
        text_config.update(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    else:
        raise ValueError("pass --model_name_or_path, --text_model_path or --text_config_json")

    config = config_with_overrides({"text_config": text_config} if text_config else {}, model_args.config_overrides)
    if model_args.vision_model_path is None:
        raise ValueError("pass --vision_model_path (a stage-1 folder or a CLIP checkpoint)")
    with adapter_initialization(model_args.adapter_init):
        model = TFCoVRModel.from_pretrained_encoders(
            config,
            vision_path=model_args.vision_model_path,
            text_path=model_args.text_model_path,
            vision_revision=vision_revision,
            text_revision=text_revision,
        )
    set_trainable(model, vision_encoder=False, text_encoder=model_args.train_text_encoder)
    video_processor = _video_processor_for(model_args.vision_model_path, model.config.vision_config, vision_revision)
    return model, TFCoVRProcessor(video_processor, tokenizer)


def _video_processor_for(vision_path: str, vision_config, revision: str | None = None) -> TFCoVRVideoProcessor:
    try:
        return TFCoVRVideoProcessor.from_pretrained(vision_path, revision=revision)
    except (OSError, ValueError):
        size = vision_config.image_size
        return TFCoVRVideoProcessor(
            num_frames=vision_config.num_frames, size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        )


def _embedding_datasets(
    model,
    processor,
    train: TripletSplit,
    evaluation: TripletSplit | None,
    embeddings_path: str,
    train_text_encoder: bool,
):
    video_ids, video_embeds = read_embeddings(embeddings_path, expected_dim=model.config.embed_dim)
    video_embeds = torch.from_numpy(np.ascontiguousarray(video_embeds, dtype=np.float32).copy())
    texts = train.modifications + (evaluation.modifications if evaluation else [])
    text_embeds, text_rows = (None, None) if train_text_encoder else cache_text_features(model, processor, texts)

    def dataset(split: TripletSplit, offset: int) -> EmbeddingTripletDataset:
        query_rows = rows_for_ids(split.query_videos, video_ids, "query videos")
        target_rows = rows_for_ids(split.target_videos, video_ids, "target videos")
        if text_embeds is None:
            return EmbeddingTripletDataset(video_embeds, query_rows, target_rows, texts=split.modifications)
        return EmbeddingTripletDataset(
            video_embeds,
            query_rows,
            target_rows,
            text_rows=text_rows[offset : offset + len(split)],
            text_embeds=text_embeds,
        )

    train_dataset = dataset(train, 0)
    eval_dataset = gallery = None
    if evaluation is not None:
        eval_dataset = dataset(evaluation, len(train))
        gallery_ids = evaluation.gallery_ids()
        gallery = RetrievalIndex(
            gallery_ids, video_embeds[rows_for_ids(gallery_ids, video_ids, "gallery videos")].numpy()
        )
    return train_dataset, eval_dataset, gallery


def _video_datasets(model, processor, train: TripletSplit, evaluation: TripletSplit | None, video_root: str):
    def paths(ids):
        return [str(resolve_video_path(video_root, video_id)) for video_id in ids]

    num_frames, backend = processor.video_processor.num_frames, processor.video_processor.video_backend
    train_dataset = VideoTripletDataset(
        paths(train.query_videos),
        paths(train.target_videos),
        train.modifications,
        num_frames,
        training=True,
        backend=backend,
    )
    if evaluation is None:
        return train_dataset, None, None
    eval_dataset = VideoTripletDataset(
        paths(evaluation.query_videos),
        paths(evaluation.target_videos),
        evaluation.modifications,
        num_frames,
        training=False,
        backend=backend,
    )
    gallery_ids = evaluation.gallery_ids()

    def gallery() -> RetrievalIndex:  # the encoder may train: embed the gallery at every evaluation
        ids, embeds, _ = embed_videos(model.vision_model, processor.video_processor, gallery_ids, paths(gallery_ids))
        return RetrievalIndex(ids, embeds)

    return train_dataset, eval_dataset, gallery


def train_retrieval(
    model_args: RetrievalModelArguments, data_args: RetrievalDataArguments, training_args: RetrievalTrainingArguments
) -> dict[str, float]:
    """Trains stage 2, keeps the best checkpoint by validation mAP@50, saves model + processor +
    model card in `training_args.output_dir`, and returns the final validation metrics."""
    set_seed(training_args.seed)  # the model is built before Trainer seeds: seed its initialisation too
    prepare_cpu_training(training_args)
    if (data_args.embeddings is None) == (data_args.video_root is None):
        raise ValueError(
            "pass exactly one of --embeddings (precomputed video embeddings) and --video_root (raw videos)"
        )
    train = load_triplet_split(data_args.triplets, data_args.train_split, revision=data_args.triplets_revision)
    if data_args.max_train_samples:
        train = train.subset(data_args.max_train_samples)
    try:
        evaluation = (
            load_triplet_split(data_args.triplets, data_args.eval_split, revision=data_args.triplets_revision)
            if data_args.eval_split
            else None
        )
    except ValueError:
        evaluation = None
    if evaluation is not None and data_args.max_eval_samples:
        evaluation = evaluation.subset(data_args.max_eval_samples)

    model, processor = build_retrieval_model(model_args, train.modifications)
    model.gather_across_processes = training_args.gather_across_processes
    if data_args.video_backend:
        processor.video_processor.video_backend = check_video_backend(data_args.video_backend)
    if data_args.embeddings:
        train_dataset, eval_dataset, gallery = _embedding_datasets(
            model, processor, train, evaluation, data_args.embeddings, model_args.train_text_encoder
        )
    else:
        train_dataset, eval_dataset, gallery = _video_datasets(
            model, processor, train, evaluation, data_args.video_root
        )

    k_values = tuple(int(k) for k in training_args.k_values.split(",")) if training_args.k_values else DEFAULT_K_VALUES
    if eval_dataset is None:
        training_args.eval_strategy = "no"
        training_args.load_best_model_at_end = False
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=TripletCollator(processor),
        compute_metrics=make_retrieval_compute_metrics(evaluation, gallery, k_values)
        if eval_dataset is not None
        else None,
    )
    use_compact_progress(trainer)
    trainer.train(resume_from_checkpoint=resolve_resume(training_args))
    metrics = trainer.evaluate() if eval_dataset is not None else {}
    if trainer.is_world_process_zero():
        # model + processor + the pipeline's code: the folder works with pipeline(..., trust_remote_code=True)
        save_for_pipeline(trainer.model, processor, training_args.output_dir)
        write_log_history(trainer, training_args.output_dir)
        write_model_card(
            training_args.output_dir,
            "retrieval",
            training_data=f"{len(train_dataset)} triplets from {data_args.triplets} ({data_args.train_split} split), "
            f"video embeddings from {data_args.embeddings or data_args.video_root}.",
            metrics={f"{data_args.eval_split} {k.removeprefix('eval_')}": v for k, v in metrics.items() if "@" in k},
            base_model=[
                p
                for p in (model_args.model_name_or_path, model_args.vision_model_path, model_args.text_model_path)
                if p
            ],
            datasets=data_args.triplets,
            dataset_name=Path(data_args.triplets).name,
        )
    return metrics


__all__ = [
    "RetrievalDataArguments",
    "RetrievalModelArguments",
    "RetrievalTrainingArguments",
    "build_retrieval_model",
    "train_retrieval",
]
