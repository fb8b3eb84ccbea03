#!/usr/bin/env python
"""Benchmark: forward pass of the AIM video encoder (ViT-B/16, 12 frames, 224 px) with SDPA and with eager attention.

One `TFCoVRVisionModel` with the default `TFCoVRVisionConfig` (random CLIP weights; AIM's adapters and temporal
embedding given non-zero random values, as after training, so that the temporal branch shapes the output) embeds the
same clips with `attn_implementation="sdpa"` and `"eager"` (switched on the same model with
`model.set_attn_implementation`; `TFCoVRVisionModel._from_config(config, attn_implementation=...)` and setting
`config._attn_implementation` before construction work too). Reported per clip: time and peak memory on CPU (float32),
and on a GPU in float16 and bfloat16 whenever one is available. The outputs of the two implementations must be equal
(float32: `allclose(atol=1e-4, rtol=1e-4)`); the script exits with status 1 otherwise.

Example:
    python scripts/bench/model.py                 # full size, CPU (about a minute on 2 cores)
    python scripts/bench/model.py --quick         # a tiny model, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
from benchmarking import (
    BenchmarkReport,
    PeakMemory,
    command_line,
    format_table,
    parse_benchmark_args,
    ratio,
    settings_of,
    time_call,
)

from modeling_tfcovr.configuration_tfcovr import TFCoVRVisionConfig
from modeling_tfcovr.modeling_tfcovr import TFCoVRVisionModel

IMPLEMENTATIONS = ("sdpa", "eager")
# Half precision: both implementations round differently through 12 layers; these bound the expected drift.
TOLERANCES = {torch.float32: 1e-4, torch.float16: 5e-2, torch.bfloat16: 1e-1}
QUICK = {"tiny": True, "repeats": 2}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 32,
    "patch_size": 8,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=1, help="clips per forward pass on CPU")
    parser.add_argument("--gpu-batch-size", type=int, default=8, help="clips per forward pass on a GPU")
    parser.add_argument("--num-frames", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=2, help="timed forward passes (after one warm-up pass)")
    parser.add_argument("--tiny", action="store_true", help="a tiny ViT (smoke runs)")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU measurements even if a GPU is present")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run: " + ", ".join(f"{k.replace('_', '-')}={v}" for k, v in QUICK.items()),
    )
    parser.add_argument("--output", type=Path, default=Path("runs/bench/model.json"), help="JSON report")
    return parser


def build_model(args: argparse.Namespace) -> TFCoVRVisionModel:
    """The default AIM ViT-B/16 (or a tiny one) with random weights and non-zero adapters."""
    overrides = dict(TINY) if args.tiny else {}
    overrides.setdefault("image_size", args.image_size)
    config = TFCoVRVisionConfig(num_frames=args.num_frames, **overrides)
    torch.manual_seed(args.seed)
    model = TFCoVRVisionModel(config).eval()
    generator = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "_adapter." in name or name.endswith("temporal_embedding"):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model


def measure(model: TFCoVRVisionModel, pixels: torch.Tensor, repeats: int, device: torch.device) -> dict[str, Any]:
    """Times `repeats` forward passes after one warm-up pass and measures their peak memory; returns the row and the
    output of the last pass."""
    cuda = device.type == "cuda"
    synchronize = torch.cuda.synchronize if cuda else None

    def forward() -> torch.Tensor:
        with torch.inference_mode():
            return model(pixels).pooler_output

    forward()  # first-call costs (kernel selection, lazy initialisation) stay out of time and memory
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        timing, output = time_call(forward, repeats=repeats, warmup=0, synchronize=synchronize)
        peak = torch.cuda.max_memory_allocated(device) - before
    else:
        with PeakMemory() as memory:  # the kernel's peak-RSS counter: the largest of the repeats
            timing, output = time_call(forward, repeats=repeats, warmup=0)
        peak = memory.delta_bytes
    timing.warmup = 1
    clips = pixels.shape[0]
    return {
        "timing": timing,
        "output": output.float().cpu(),
        "row": {
            "s_per_clip": timing.best / clips,
            "clips_per_s": clips / timing.best,
            **timing.to_dict(),
            "peak_memory_bytes": peak,
            "peak_memory_per_clip_bytes": peak / clips,
            "memory_kind": "GPU allocated (torch.cuda.max_memory_allocated)" if cuda else "process RSS increase",
        },
    }


def compare(
    model: TFCoVRVisionModel,
    pixels: torch.Tensor,
    device: torch.device,
    dtype: torch.dtype,
    batch: int,
    repeats: int,
    report: BenchmarkReport,
    label: str,
) -> list[dict[str, Any]]:
    """Runs both implementations on `pixels` (a batch of `batch` clips) and records rows, the check and a ratio."""
    rows, outputs = [], {}
    for implementation in IMPLEMENTATIONS:
        model.set_attn_implementation(implementation)
        result = measure(model, pixels, repeats, device)
        outputs[implementation] = result["output"]
        rows.append(
            {
                "device": label,
                "dtype": str(dtype).removeprefix("torch."),
                "attention": implementation,
                "batch": batch,
                **result["row"],
            }
        )
        print(
            f"  {label} {rows[-1]['dtype']} {implementation}: {rows[-1]['s_per_clip']:.3f} s/clip, "
            f"peak +{rows[-1]['peak_memory_per_clip_bytes'] / 2**20:.0f} MiB/clip",
            flush=True,
        )
    tolerance = TOLERANCES[dtype]
    difference = float((outputs["sdpa"] - outputs["eager"]).abs().max())
    equal = torch.allclose(outputs["sdpa"], outputs["eager"], atol=tolerance, rtol=tolerance)
    report.add_check(
        f"{label}_{rows[0]['dtype']}_sdpa_equals_eager", equal, max_abs_difference=difference, tolerance=tolerance
    )
    speedup = ratio(rows[1]["s_per_clip"], rows[0]["s_per_clip"])
    for row in rows:
        row["speedup_sdpa_vs_eager"] = speedup
    report.results.setdefault("speedup_sdpa_vs_eager", {})[f"{label}_{rows[0]['dtype']}"] = speedup
    return rows


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns 0 when SDPA and eager outputs agree, 1 otherwise."""
    args = parse_benchmark_args(build_parser(), argv, QUICK)
    started = time.perf_counter()
    report = BenchmarkReport("model", command_line("scripts/bench/model.py", argv), settings_of(args))
    model = build_model(args)
    config = model.config
    size = config.image_size
    print(
        f"TFCoVRVisionModel: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
        f"{config.num_hidden_layers} layers, {args.num_frames} frames at {size} px; torch threads "
        f"{torch.get_num_threads()}",
        flush=True,
    )
    generator = torch.Generator().manual_seed(args.seed)
    pixels = torch.randn(args.batch_size, args.num_frames, 3, size, size, generator=generator)
    rows = compare(model, pixels, torch.device("cpu"), torch.float32, args.batch_size, args.repeats, report, "cpu")

    if torch.cuda.is_available() and not args.no_gpu:
        device = torch.device("cuda")
        gpu_pixels = torch.randn(args.gpu_batch_size, args.num_frames, 3, size, size, generator=generator)
        report.results["gpu"] = torch.cuda.get_device_name(device)
        for dtype in (torch.float16, torch.bfloat16):
            if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
                continue
            model.to(device=device, dtype=dtype)
            rows += compare(
                model,
                gpu_pixels.to(device=device, dtype=dtype),
                device,
                dtype,
                args.gpu_batch_size,
                max(args.repeats, 5),
                report,
                "cuda",
            )
        model.to(device="cpu", dtype=torch.float32)
    else:
        report.results["gpu"] = None

    report.results["rows"] = rows
    report.results["attn_implementation_switch"] = "model.set_attn_implementation(name)"
    print(
        "\n"
        + format_table(
            rows,
            {
                "device": "device",
                "dtype": "dtype",
                "attention": "attention",
                "batch": "clips/batch",
                "s_per_clip": "s/clip",
                "clips_per_s": "clips/s",
                "peak_memory_per_clip_bytes": "peak memory per clip",
                "speedup_sdpa_vs_eager": "SDPA speed-up",
            },
        )
    )
    return report.finish(args.output, started)


if __name__ == "__main__":
    sys.exit(main())
