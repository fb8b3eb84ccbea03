"""A small embedding world for stage-2 tests: videos of labelled clips, embeddings whose geometry
follows the labels, and triplets whose modification texts name a label change. Everything is
written in the project's real formats (triplet parquet + dataset card, embeddings parquet, a saved
vision encoder), so the training scripts run on it unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import modeling_tfcovr as mt
from modeling_tfcovr.data.embeddings import write_embeddings_parquet

EMBED_DIM = 16
CHANGES = {  # modification text -> label arithmetic on a ring of labels
    "one more": 1,
    "two more": 2,
    "one fewer": -1,
    "the opposite": 3,
}
TEXT_CONFIG = dict(
    model_type="clip_text_model",
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    projection_dim=16,
    max_position_embeddings=16,
)


def build_embedding_world(root: Path, num_labels: int = 16, clips_per_label: dict | None = None, seed: int = 0) -> dict:
    """Writes `root/triplets` (train/val splits), `root/embeddings.parquet`, `root/vision` and
    `root/text_config.json`; returns their paths."""
    rng = np.random.default_rng(seed)
    clips_per_label = clips_per_label or {"train": 4, "val": 2}
    prototypes = rng.normal(size=(num_labels, EMBED_DIM))
    video_ids, embeds, splits = [], [], {}
    for split, count in clips_per_label.items():
        clips = []
        for label in range(num_labels):
            for k in range(count):
                video_id = f"{split}_{label}_{k}"
                video_ids.append(video_id)
                embeds.append(prototypes[label] + 0.3 * rng.normal(size=EMBED_DIM))
                clips.append((video_id, label))
        splits[split] = clips
    write_embeddings_parquet(root / "embeddings.parquet", video_ids, np.asarray(embeds, np.float32))

    (root / "triplets" / "data").mkdir(parents=True, exist_ok=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    for split, clips in splits.items():
        by_label = {}
        for video_id, label in clips:
            by_label.setdefault(label, []).append(video_id)
        rows = []
        for video_id, label in clips:
            for text, delta in CHANGES.items():
                target_label = (label + delta) % num_labels
                targets = by_label[target_label]
                rows.append(
                    {
                        "query_id": f"{split}-{len(rows)}",
                        "query_video": video_id,
                        "query_label": str(label),
                        "modification": text,
                        "target_video": targets[int(rng.integers(len(targets)))],
                        "target_videos": targets,
                        "target_label": str(target_label),
                        "source": "synthetic",
                    }
                )
        pq.write_table(pa.Table.from_pylist(rows), root / "triplets" / "data" / f"{split}.parquet")
    (root / "triplets" / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n"
        + "".join(f"  - split: {s}\n    path: data/{s}.parquet\n" for s in splits)
        + "---\n"
    )
    vision = mt.TFCoVRVisionModel(
        mt.TFCoVRVisionConfig(
            hidden_size=EMBED_DIM,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
            num_frames=2,
        )
    )
    vision.save_pretrained(root / "vision")
    (root / "text_config.json").write_text(json.dumps(TEXT_CONFIG))
    return {
        "triplets": root / "triplets",
        "embeddings": root / "embeddings.parquet",
        "vision": root / "vision",
        "text_config": root / "text_config.json",
    }


def stage2_arguments(world: dict, output_dir: Path, **overrides) -> list[str]:
    """Command-line arguments of scripts/train_retrieval.py for the embedding world."""
    options = {
        "triplets": world["triplets"],
        "embeddings": world["embeddings"],
        "vision_model_path": world["vision"],
        "text_config_json": world["text_config"],
        "train_text_encoder": True,
        "output_dir": output_dir,
        "combiner_projection_dim": 256,
        "combiner_hidden_dim": 512,
        "combiner_dropout": 0.0,
        "learning_rate": 3e-3,
        "per_device_train_batch_size": 16,
        "num_train_epochs": 12,
        "use_cpu": True,
        "seed": 0,
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "eval_strategy": "epoch",
        "logging_strategy": "epoch",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }
    options.update(overrides)
    # Fields of the model's config go through --config_overrides.
    config = {key: options.pop(key) for key in list(options) if key in STAGE2_CONFIG_FIELDS}
    options["config_overrides"] = ",".join(f"{key}={value}" for key, value in config.items())
    return [part for key, value in options.items() for part in (f"--{key}", str(value))]


STAGE2_CONFIG_FIELDS = (
    "combiner_projection_dim",
    "combiner_hidden_dim",
    "combiner_dropout",
    "temperature",
    "hn_nce_alpha",
    "hn_nce_beta",
    "hn_nce_variant",
)
