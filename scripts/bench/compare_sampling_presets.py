"""Measures whether the official AIM extraction preset (its frame indices and PIL squash resize) or the library's
default video processing (middle of each segment, resize + centre crop) serves a classifier trained with this
library better: the stage-1 accuracy of one trained model on a clips table under each, same clips, same weights.

    python scripts/bench/compare_sampling_presets.py --model runs/demo/stage1_temporal \
        --clips runs/demo/data/clips/val.parquet --video-root runs/demo/data
"""

from __future__ import annotations

import argparse
import os

import pyarrow.parquet as pq
import torch

from modeling_tfcovr import TFCoVRForVideoClassification, TFCoVRVideoProcessor
from modeling_tfcovr.video_processing_tfcovr import official_aim_video_processor


@torch.no_grad()
def accuracy(model, processor, paths: list[str], labels: list[int], batch_size: int = 16) -> float:
    correct = 0
    for start in range(0, len(paths), batch_size):
        pixels = processor(paths[start : start + batch_size], return_tensors="pt")["pixel_values_videos"]
        predictions = model(pixel_values_videos=pixels).logits.argmax(-1)
        correct += int((predictions == torch.tensor(labels[start : start + batch_size])).sum())
    return 100.0 * correct / len(paths)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a stage-1 TFCoVRForVideoClassification folder")
    parser.add_argument("--clips", nargs="+", required=True, help="clip tables (parquet with video, label_id)")
    parser.add_argument("--video-root", required=True)
    args = parser.parse_args(argv)
    model = TFCoVRForVideoClassification.from_pretrained(args.model).eval()
    ours = TFCoVRVideoProcessor.from_pretrained(args.model)
    size = model.config.vision_config.image_size
    presets = {
        "library default (middle, resize + crop)": ours,
        "official sampling only": TFCoVRVideoProcessor.from_dict({**ours.to_dict(), "sampling_mode": "official"}),
        "official AIM extraction preset": official_aim_video_processor(ours.num_frames, size),
    }
    print("| clips | " + " | ".join(presets) + " |")
    print("|---|" + "---|" * len(presets))
    for table in args.clips:
        rows = pq.read_table(table, columns=["video", "label_id"]).to_pylist()
        paths = [os.path.join(args.video_root, row["video"]) for row in rows]
        labels = [row["label_id"] for row in rows]
        scores = [accuracy(model, processor, paths, labels) for processor in presets.values()]
        print(f"| {os.path.basename(table)} ({len(rows)}) | " + " | ".join(f"{score:.1f}" for score in scores) + " |")


if __name__ == "__main__":
    main()
