#!/usr/bin/env python
"""Benchmark: stage-2 training throughput with cached text features against recomputing the text tower every step.

The setting is TF-CoVR's: 180,000 triplets over random 768-d video embeddings, modification texts drawn from about
20,000 distinct texts (templates with numbers, as the LLM-written modifications are), the real-size CLIP RN50 text
tower with random weights (`TFCoVRConfig()`), batch 512, AdamW (lr 1e-5, weight decay 0.05) on the trainable text
projection and combiner. A training step is: collate the batch (`EmbeddingTripletDataset` + `TripletCollator`),
forward, HN-NCE, backward, optimizer step. Four loops run on the same batches in one process:

- official: the text tower recomputed at every step on texts padded to CLIP's 77 tokens (what `clip.tokenize` in the
  official training loop feeds it), `torch.optim.AdamW` with torch's default implementation;
- recompute, pad to longest: the text tower recomputed at every step with our processor's tokenisation (padding to
  the batch's longest text) and our optimizer step, which isolates the gain of caching;
- cached, plain AdamW: text features cached once per distinct text (`cache_text_features`) and looked up at every
  step, with the official loop's optimizer, which isolates the gain of caching from that of the optimizer;
- ours: cached text features and the step `Trainer` runs with the project's defaults (transformers 5: fused AdamW,
  `optim="adamw_torch_fused"`, and gradient clipping at norm 1).

Reported: seconds per step, triplets/s, seconds per epoch extrapolated from the measured steps, the one-off caching
cost (measured on the distinct texts of the benchmarked batches and extrapolated to all distinct texts; counted in
the first epoch) and the speed-ups. The first step's loss must be equal in all loops (same initial weights, same
dropout seed); the script exits with status 1 otherwise.

Example:
    python scripts/bench/train.py             # full size (about three minutes on 2 cores)
    python scripts/bench/train.py --quick     # a tiny model, seconds
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarking import (
    BenchmarkReport,
    PeakMemory,
    Timing,
    command_line,
    format_table,
    parse_benchmark_args,
    ratio,
    settings_of,
)

from modeling_tfcovr.configuration_tfcovr import TFCoVRConfig
from modeling_tfcovr.modeling_tfcovr import TFCoVRModel
from modeling_tfcovr.processing_tfcovr import TFCoVRProcessor
from modeling_tfcovr.retrieval_evaluation import cache_text_features
from modeling_tfcovr.training.data import EmbeddingTripletDataset, TripletCollator
from modeling_tfcovr.training.freezing import set_trainable
from modeling_tfcovr.video_processing_tfcovr import TFCoVRVideoProcessor

OFFICIAL_CONTEXT_LENGTH = 77  # clip.tokenize pads every text to CLIP's context length

OFFICIAL = "official: recompute text tower, 77 tokens"
LONGEST = "recompute text tower, pad to longest"
OURS_PLAIN = "cached text features, plain AdamW"
OURS = "ours: cached text features (Trainer step)"

QUICK = {
    "triplets": 4096,
    "unique_texts": 500,
    "videos": 1000,
    "batch_size": 64,
    "steps": 2,
    "official_steps": 2,
    "tiny": True,
    "tokenizer": "word",
    "embed_dim": 64,
}

TEMPLATES = (
    "show it with {a} {unit} instead of {b}",
    "make it {a} {unit} rather than {b} {where}",
    "change the number of {unit} from {b} to {a}",
    "perform {a} {unit} {where} instead of {b}",
    "do the same element with {a} {unit}",
    "add {d} more {unit} {where}",
    "with {d} fewer {unit} and the opposite direction",
    "reverse the direction and do {a} {unit}",
    "same action but {where} with {a} {unit}",
    "replace {b} {unit} with {a} {unit}",
    "increase the {unit} to {a} {where}",
    "decrease the {unit} from {b} to {a}",
    "switch to {a} {unit} and land {where}",
    "the target shows {a} {unit} instead of {b} {unit}",
    "turn {b} {unit} into {a} {unit} {where}",
    "a version with {a} {unit} performed {where}",
)
UNITS = ("twists", "turns", "saltos", "somersaults", "rotations", "half turns", "pikes", "tucks")
WHERE = (
    "on the beam",
    "on the floor",
    "on the vault",
    "on the bars",
    "from the 3m springboard",
    "from the 10m platform",
    "in a layout position",
    "in a tucked position",
)
COUNTS = ("0.5", "1", "1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triplets", type=int, default=180000, help="triplets in the training set (one epoch)")
    parser.add_argument("--unique-texts", type=int, default=20000, help="distinct modification texts")
    parser.add_argument("--videos", type=int, default=20000, help="rows of the video-embedding table")
    parser.add_argument("--embed-dim", type=int, default=768)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--steps", type=int, default=2, help="timed steps of the cached loops (after a first, untimed step)"
    )
    parser.add_argument(
        "--official-steps",
        type=int,
        default=1,
        help="timed steps of the official and pad-to-longest loops, which recompute the text tower "
        "(after a first, untimed step); each is slow",
    )
    parser.add_argument("--tiny", action="store_true", help="a tiny text tower and combiner (smoke runs)")
    parser.add_argument(
        "--tokenizer",
        choices=("clip", "word"),
        default="clip",
        help="OpenAI's CLIP BPE tokenizer (built offline) or a word-level one (faster to build)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run: " + ", ".join(f"{k.replace('_', '-')}={v}" for k, v in QUICK.items()),
    )
    parser.add_argument("--output", type=Path, default=Path("runs/bench/train.json"), help="JSON report")
    return parser


# ----------------------------------------------------------------------------------------------------------------------
# Data and model
# ----------------------------------------------------------------------------------------------------------------------


def modification_texts(count: int, seed: int) -> list[str]:
    """`count` distinct modification texts, drawn without replacement from templates filled with every combination of
    counts, units and places."""
    pool = sorted(
        {
            template.format(a=COUNTS[a], b=COUNTS[b], d=COUNTS[abs(a - b) - 1], unit=unit, where=where)
            for template, (a, b), unit, where in itertools.product(
                TEMPLATES, itertools.permutations(range(len(COUNTS)), 2), UNITS, WHERE
            )
        }
    )
    if count > len(pool):
        raise ValueError(f"the templates give {len(pool)} distinct texts, asked for {count}")
    return [pool[i] for i in np.random.default_rng(seed).choice(len(pool), size=count, replace=False)]


def build_tokenizer(texts: Sequence[str], kind: str = "clip") -> tuple[Any, str]:
    """OpenAI's CLIP tokenizer built offline (needs the `clip` package's vocabulary), else (or with `kind="word"`) a
    word-level tokenizer over `texts`."""
    try:
        if kind != "clip":
            raise ImportError("a word-level tokenizer was asked for")
        from modeling_tfcovr.convert.clip_tokenizer import build_clip_tokenizer

        with tempfile.TemporaryDirectory(prefix="bench_clip_tokenizer_") as folder:
            return build_clip_tokenizer(folder), "OpenAI CLIP BPE"
    except (ImportError, OSError, ValueError):
        from modeling_tfcovr.tokenization_utils import build_word_level_tokenizer

        return build_word_level_tokenizer(texts), "word-level" if kind != "clip" else "word-level (no CLIP vocabulary)"


def build_model(tokenizer: Any, tiny: bool, embed_dim: int) -> TFCoVRModel:
    """Stage-2 model: the default `TFCoVRConfig` (CLIP RN50 text tower, ViT-B/16 AIM, 3072/6144 combiner), random
    weights; `tiny` shrinks the towers and the combiner for smoke runs."""
    text_config = None
    if tiny:
        text_config = {
            "model_type": "clip_text_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "projection_dim": 48,
            "max_position_embeddings": OFFICIAL_CONTEXT_LENGTH,
        }
    elif embed_dim != 768:
        raise ValueError("the full-size model has 768-d embeddings; use --tiny for other sizes")
    if text_config is not None:
        text_config.update(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    kwargs: dict[str, Any] = {}
    if tiny:
        kwargs = {
            "vision_config": {
                "hidden_size": embed_dim,
                "intermediate_size": 2 * embed_dim,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 32,
                "patch_size": 16,
                "num_frames": 2,
            },
            "embed_dim": embed_dim,
            "combiner_projection_dim": 2 * embed_dim,
            "combiner_hidden_dim": 4 * embed_dim,
        }
    config = TFCoVRConfig(text_config=text_config, **kwargs)
    if not tiny and config.text_config.vocab_size < len(tokenizer):
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens, the text tower {config.text_config.vocab_size}")
    model = TFCoVRModel(config)
    set_trainable(model, vision_encoder=False)  # stage 2 trains the text projection and the combiner
    return model


class OfficialTextCollator:
    """`TripletCollator`, but texts are tokenised as `clip.tokenize` does in the official loop: padded to 77 tokens."""

    def __init__(self, processor: TFCoVRProcessor) -> None:
        self.processor = processor
        self.collator = TripletCollator(processor)

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        texts = [item["text"] for item in items]
        batch = self.collator([{k: v for k, v in item.items() if k != "text"} for item in items])
        encoded = self.processor.tokenizer(
            self.processor.prepare_text(texts),
            padding="max_length",
            truncation=True,
            max_length=OFFICIAL_CONTEXT_LENGTH,
            return_tensors="pt",
        )
        batch.update(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
        return batch


def train_step(
    model: TFCoVRModel,
    optimizer: torch.optim.Optimizer,
    dataset: torch.utils.data.Dataset,
    collator: Any,
    indices: Sequence[int],
    max_grad_norm: float | None = None,
) -> float:
    """One training step on the triplets `indices`: collate, forward, HN-NCE, backward, (gradient clipping,) AdamW
    step. Returns the loss."""
    batch = collator([dataset[i] for i in indices])
    batch.pop("query_index", None)
    optimizer.zero_grad(set_to_none=True)
    loss = model(**batch, return_loss=True).loss
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    optimizer.step()
    return float(loss.detach())


def make_optimizer(model: TFCoVRModel, fused: bool) -> torch.optim.Optimizer:
    """AdamW with the paper's stage-2 settings over the trainable parameters (text projection + combiner):
    `fused=True` is what `Trainer` builds by default (`optim="adamw_torch_fused"`), `False` torch's default
    implementation (a per-tensor loop for CPU tensors), what a hand-written loop gets."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(parameters, lr=1e-5, weight_decay=0.05, **({"fused": True} if fused else {}))


# ----------------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns 0 when the first-step losses are equal, 1 otherwise."""
    args = parse_benchmark_args(build_parser(), argv, QUICK)
    started = time.perf_counter()
    report = BenchmarkReport("train", command_line("scripts/bench/train.py", argv), settings_of(args))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    # Data: random video embeddings, triplets as rows into them, one text per triplet (every distinct text used).
    unique_texts = modification_texts(args.unique_texts, args.seed)
    text_of_triplet = np.concatenate(
        [rng.permutation(args.unique_texts), rng.integers(0, args.unique_texts, args.triplets - args.unique_texts)]
    )
    rng.shuffle(text_of_triplet)
    texts = [unique_texts[i] for i in text_of_triplet]
    video_embeds = torch.randn(args.videos, args.embed_dim, generator=torch.Generator().manual_seed(args.seed))
    query_rows = rng.integers(0, args.videos, args.triplets)
    target_rows = rng.integers(0, args.videos, args.triplets)
    order = rng.permutation(args.triplets)  # the epoch's shuffled order, shared by every loop
    num_batches = 1 + max(args.steps, args.official_steps)
    batches = [order[i * args.batch_size : (i + 1) * args.batch_size].tolist() for i in range(num_batches)]
    steps_per_epoch = math.ceil(args.triplets / args.batch_size)

    start = time.perf_counter()
    tokenizer, tokenizer_kind = build_tokenizer(unique_texts, args.tokenizer)
    processor = TFCoVRProcessor(TFCoVRVideoProcessor(), tokenizer)
    model = build_model(tokenizer, args.tiny, args.embed_dim).train()
    initial_state = copy.deepcopy(
        {k: v for k, v in model.state_dict().items() if not k.startswith(("vision_model.", "text_model."))}
    )
    setup_s = time.perf_counter() - start
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(
        f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, {trainable / 1e6:.1f} M "
        "trainable; "
        f"tokenizer {tokenizer_kind}; torch threads {torch.get_num_threads()} (setup {setup_s:.1f} s)",
        flush=True,
    )

    raw_dataset = EmbeddingTripletDataset(video_embeds, query_rows, target_rows, texts=texts)
    # The Trainer step of the project's defaults: fused AdamW and gradient clipping at norm 1.
    trainer_step = {"fused": True, "max_grad_norm": 1.0}
    plain_step = {"fused": False, "max_grad_norm": None}
    loops: dict[str, dict[str, Any]] = {
        OFFICIAL: {
            "dataset": raw_dataset,
            "collator": OfficialTextCollator(processor),
            "steps": args.official_steps,
            **plain_step,
        },
        LONGEST: {
            "dataset": raw_dataset,
            "collator": TripletCollator(processor),
            "steps": args.official_steps,
            **trainer_step,
        },
    }

    # The one-off cache: measured on the distinct texts of the benchmarked batches, extrapolated to all distinct texts.
    needed = sorted({texts[i] for batch in batches for i in batch})
    model.eval()  # as when the training script caches, before Trainer switches to training mode
    with torch.no_grad(), PeakMemory() as cache_memory:
        start = time.perf_counter()
        text_features, rows_of_needed = cache_text_features(model, processor, needed)
        cache_sample_s = time.perf_counter() - start
    model.train()
    cache_full_s = cache_sample_s * args.unique_texts / len(needed)
    row_of_text = dict(zip(needed, rows_of_needed))
    # Triplets outside the benchmarked batches are never read; their rows point at row 0.
    text_rows = [row_of_text.get(text, 0) for text in texts]
    cached_dataset = EmbeddingTripletDataset(
        video_embeds, query_rows, target_rows, text_rows=text_rows, text_embeds=text_features
    )
    loops[OURS_PLAIN] = {
        "dataset": cached_dataset,
        "collator": TripletCollator(processor),
        "steps": args.steps,
        **plain_step,
    }
    loops[OURS] = {
        "dataset": cached_dataset,
        "collator": TripletCollator(processor),
        "steps": args.steps,
        **trainer_step,
    }
    print(
        f"cache: {len(needed)} distinct texts encoded in {cache_sample_s:.1f} s "
        f"-> {args.unique_texts} distinct texts: {cache_full_s:.1f} s (extrapolated)",
        flush=True,
    )

    rows = []
    first_losses = {}
    for name, loop in loops.items():
        model.load_state_dict(initial_state, strict=False)
        optimizer = make_optimizer(model, loop["fused"])
        torch.manual_seed(args.seed)  # the same dropout masks in every loop's first step
        start = time.perf_counter()
        first_losses[name] = train_step(
            model, optimizer, loop["dataset"], loop["collator"], batches[0], loop["max_grad_norm"]
        )
        first_s = time.perf_counter() - start
        times = []
        with PeakMemory() as memory:
            for batch in batches[1 : 1 + loop["steps"]]:
                start = time.perf_counter()
                train_step(model, optimizer, loop["dataset"], loop["collator"], batch, loop["max_grad_norm"])
                times.append(time.perf_counter() - start)
        timing = Timing(times, warmup=1)
        rows.append(
            {
                "loop": name,
                "optimizer": "AdamW fused, clip 1.0" if loop["fused"] else "AdamW (torch default)",
                "first_step_s": first_s,
                **timing.to_dict(),
                "triplets_per_s": args.batch_size / timing.median,
                "epoch_s": steps_per_epoch * timing.median,
                "first_step_loss": first_losses[name],
                "peak_memory_bytes": memory.delta_bytes,
            }
        )
        print(
            f"  {name}: {timing.median:.2f} s/step (first step {first_s:.2f} s), loss {first_losses[name]:.6f}",
            flush=True,
        )
        del optimizer

    by_name = {row["loop"]: row for row in rows}
    for name in (OURS_PLAIN, OURS):
        by_name[name]["cache_once_s"] = cache_full_s
        by_name[name]["first_epoch_s"] = by_name[name]["epoch_s"] + cache_full_s
    ours, official, longest = by_name[OURS], by_name[OFFICIAL], by_name[LONGEST]
    for row in rows:
        row.setdefault("first_epoch_s", row["epoch_s"])
        row["official_over_this_first_epoch"] = ratio(official["first_epoch_s"], row["first_epoch_s"])
        row["official_over_this_later_epochs"] = ratio(official["epoch_s"], row["epoch_s"])

    reference = first_losses[OFFICIAL]
    losses_equal = all(math.isclose(loss, reference, rel_tol=1e-5, abs_tol=1e-6) for loss in first_losses.values())
    report.add_check("first_step_loss_equal", losses_equal, losses=first_losses, rel_tol=1e-5)
    speedups = {
        "speedup_vs_official_first_epoch": ratio(official["first_epoch_s"], ours["first_epoch_s"]),
        "speedup_vs_official_later_epochs": ratio(official["epoch_s"], ours["epoch_s"]),
        "speedup_vs_official_same_optimizer_first_epoch": ratio(
            official["first_epoch_s"], by_name[OURS_PLAIN]["first_epoch_s"]
        ),
        "speedup_vs_recompute_pad_longest_first_epoch": ratio(longest["first_epoch_s"], ours["first_epoch_s"]),
        "speedup_vs_recompute_pad_longest_later_epochs": ratio(longest["epoch_s"], ours["epoch_s"]),
    }
    for name in ("speedup_vs_official_first_epoch", "speedup_vs_official_later_epochs"):
        report.add_target(name, speedups[name], ">= 5x", speedups[name] >= 5)
    report.results = {
        "rows": rows,
        "steps_per_epoch": steps_per_epoch,
        "tokenizer": tokenizer_kind,
        "trainable_parameters": trainable,
        "cache": {
            "distinct_texts_encoded": len(needed),
            "seconds": cache_sample_s,
            "distinct_texts_total": args.unique_texts,
            "extrapolated_seconds": cache_full_s,
            "peak_memory_bytes": cache_memory.delta_bytes,
        },
        "mean_tokens_per_text": float(
            np.mean([len(ids) for ids in tokenizer(processor.prepare_text(needed))["input_ids"]])
        ),
        "setup_s": setup_s,
        **speedups,
    }
    print(
        "\n"
        + format_table(
            rows,
            {
                "loop": "loop",
                "optimizer": "optimizer step",
                "median_s": "s/step",
                "triplets_per_s": "triplets/s",
                "epoch_s": "s/epoch",
                "first_epoch_s": "s/first epoch (incl. cache)",
                "official_over_this_first_epoch": "speed-up vs official, first epoch",
                "official_over_this_later_epochs": "speed-up vs official, later epochs",
                "peak_memory_bytes": "peak memory",
            },
        )
    )
    return report.finish(args.output, started)


if __name__ == "__main__":
    sys.exit(main())
