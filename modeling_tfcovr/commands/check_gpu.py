"""Checks the CUDA paths on one GPU against the CPU path, on the same tiny data, in one command (a few minutes):

- both training stages through `Trainer` in float32, `--bf16` and `--fp16` (losses against the CPU run);
- HN-NCE with negatives gathered from two processes that share the GPU, against one process with the whole batch;
- video-embedding extraction and `pipeline("composed-video-retrieval")` on CUDA against the CPU;
- FAISS on the GPU against exact search, when `faiss` with GPU support is installed;
- both stages launched through `accelerate launch` (losses against the in-process run);
- the model benchmark: AIM ViT-B/16, 12 frames, 224 px, clips per second in fp32/bf16/fp16 and peak memory.

Without CUDA (or with `--dry-run`) every check runs what it can on the CPU (the CPU references, the two-process
gather on gloo, `accelerate launch --cpu`) and prints SKIP with the reason for the rest.

    scripts/check_gpu.sh                  # or: make check-gpu
    scripts/check_gpu.sh --dry-run        # the CPU part only

Tolerances (TF32 off for the float32 comparisons): first training loss within 1e-4 relative in float32 and 3e-2 in
bf16/fp16, later losses within 1e-2 (float32) and 1e-1 (half precision, after a few optimizer steps); embeddings
within 1e-4 absolute; pipeline: the same top-5 and scores within 1e-4; gathered negatives: loss and gradients within
1e-5; FAISS: the same top-10. Exit status 1 when a check fails.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from . import command_parser

ROOT = Path(__file__).resolve().parents[2]
PRECISIONS = ("fp32", "bf16", "fp16")
FIRST_LOSS_RTOL = {"fp32": 1e-4, "bf16": 3e-2, "fp16": 3e-2}
LOSS_RTOL = {"fp32": 1e-2, "bf16": 1e-1, "fp16": 1e-1}
TINY_TEXT = dict(
    model_type="bert",
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    max_position_embeddings=32,
)


class Checks:
    """Records and prints one line per check: PASS / FAIL / SKIP, what was compared, seconds."""

    def __init__(self):
        self.rows: list[dict] = []

    def record(self, name: str, status: str, detail: str, seconds: float = 0.0) -> None:
        self.rows.append({"check": name, "status": status, "detail": detail, "seconds": round(seconds, 1)})
        print(f"{status:4} {name}: {detail} [{seconds:.0f}s]", flush=True)

    def run(self, name: str, check: Callable[[], tuple[bool, str]]) -> None:
        started = time.perf_counter()
        try:
            ok, detail = check()
        except (Exception, SystemExit) as error:  # a check that crashes is a failed check; the others still run
            ok, detail = False, f"{type(error).__name__}: {error}"
        self.record(name, "PASS" if ok else "FAIL", detail, time.perf_counter() - started)

    def skip(self, name: str, reason: str) -> None:
        self.record(name, "SKIP", reason)

    @property
    def failed(self) -> list[str]:
        return [row["check"] for row in self.rows if row["status"] == "FAIL"]


def _arguments(options: dict) -> list[str]:
    # Booleans written out ("--bf16 False"): HfArgumentParser takes a value for optional booleans.
    return [part for key, value in options.items() if value is not None for part in (f"--{key}", str(value))]


def _losses(output_dir: Path) -> list[float]:
    return [h["loss"] for h in json.loads((output_dir / "log_history.json").read_text()) if "loss" in h]


def _compare_losses(reference: list[float], losses: list[float], precision: str) -> tuple[bool, str]:
    if not losses or len(losses) != len(reference) or not all(math.isfinite(x) for x in losses):
        return False, f"losses {losses} against {reference}"
    first = abs(losses[0] - reference[0]) / abs(reference[0])
    worst = max(abs(a - b) / abs(b) for a, b in zip(losses, reference))
    ok = first <= FIRST_LOSS_RTOL[precision] and worst <= LOSS_RTOL[precision]
    return ok, (
        f"{len(losses)} losses, first {losses[0]:.5f} vs CPU {reference[0]:.5f} (rel {first:.1e} <= "
        f"{FIRST_LOSS_RTOL[precision]:.0e}), worst rel {worst:.1e} <= {LOSS_RTOL[precision]:.0e}"
    )


class Workbench:
    """The tiny data and the argument lists of both stages, shared by the checks."""

    def __init__(self, root: Path):
        from ..data.synthetic import SyntheticConfig, build_synthetic_benchmark

        self.root = root
        self.data = root / "data"
        config = SyntheticConfig(
            size=32,
            num_frames=8,
            apparatus=("floor", "beam"),
            rotations=(1.0, 2.0),
            train_clips_per_label=2,
            val_clips_per_label=1,
            test_clips_per_label=2,
        )
        build_synthetic_benchmark(self.data, seed=0, config=config)
        (root / "text.json").write_text(json.dumps(TINY_TEXT))
        self.stage1_model = root / "stage1-cpu-fp32"
        self.embeddings = root / "embeddings-cpu"

    def stage1(self, output_dir: Path, device: str, precision: str) -> list[str]:
        architecture = (
            "num_frames=4,hidden_size=32,intermediate_size=64,num_hidden_layers=2,num_attention_heads=2,"
            'conv_stem={"channels": [8, 16], "temporal_kernel": 3}'
        )
        options = {
            "dataset_dir": self.data,
            "output_dir": output_dir,
            "model_preset": "synthetic-scratch",
            "config_overrides": architecture,
            "adapter_init": "random",
            "train_backbone": True,
            "warmup_epochs": 0,
        }
        return _arguments(options) + _common(output_dir, device, precision, 8)

    def stage2(self, output_dir: Path, device: str, precision: str) -> list[str]:
        options = {
            "triplets": self.data,
            "embeddings": self.embeddings,
            "vision_model_path": self.stage1_model,
            "text_config_json": self.root / "text.json",
            "config_overrides": "combiner_projection_dim=32,combiner_hidden_dim=32,combiner_dropout=0.0",
        }
        return _arguments(options) + _common(output_dir, device, precision, 16)


def _common(output_dir: Path, device: str, precision: str, batch_size: int) -> list[str]:
    return _arguments(
        {
            "output_dir": output_dir,
            "max_steps": 4,
            "per_device_train_batch_size": batch_size,
            "learning_rate": 1e-3,
            "logging_strategy": "steps",
            "logging_steps": 1,
            "eval_strategy": "no",
            "save_strategy": "no",
            "load_best_model_at_end": False,
            "seed": 0,
            "report_to": "none",
            "dataloader_num_workers": 0,
            "disable_tqdm": True,
            "use_cpu": device == "cpu",
            "bf16": precision == "bf16",
            "fp16": precision == "fp16",
        }
    )


def _train(stage: str, arguments: list[str]) -> None:
    from .train_classifier import main as train_classifier
    from .train_retrieval import main as train_retrieval

    (train_classifier if stage == "stage1" else train_retrieval)(arguments)


def _extract(encoder_dir: Path, data: Path, device: str) -> tuple[list[str], np.ndarray]:
    from ..modeling_tfcovr import load_vision_encoder
    from ..training.extract import embed_videos
    from ..video_processing_tfcovr import TFCoVRVideoProcessor

    encoder = load_vision_encoder(encoder_dir).to(device)
    paths = sorted((data / "videos").glob("*.mp4"))
    ids, embeds, failures = embed_videos(
        encoder, TFCoVRVideoProcessor.from_pretrained(encoder_dir), [p.stem for p in paths], paths
    )
    if failures:
        raise RuntimeError(f"{len(failures)} videos failed to decode: {failures[:2]}")
    return ids, embeds


def _pipeline_answers(model_dir: Path, data: Path, device: str) -> list[list[tuple[str, float]]]:
    from transformers import pipeline

    from ..retrieval_evaluation import load_triplet_split

    pipe = pipeline(
        "composed-video-retrieval", model=str(model_dir), trust_remote_code=True, device=0 if device == "cuda" else -1
    )
    split = load_triplet_split(data, "test")
    videos = sorted(set(split.target_videos))
    gallery = pipe.index([str(data / "videos" / f"{v}.mp4") for v in videos], progress=False)
    answers = []
    for row in range(min(3, len(split))):
        found = pipe(
            video=str(data / "videos" / f"{split.query_videos[row]}.mp4"),
            text=split.modifications[row],
            gallery=gallery,
            top_k=5,
        )
        answers.append([(a["video_id"], float(a["score"])) for a in found])
    return answers


def _gather_worker(rank: int, world_size: int, init_file: str, device: str, result_file: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        loss, grads = _hn_nce_step(device, rank, world_size)
        if rank == 0:
            torch.save({"loss": loss, "grads": grads}, result_file)
    finally:
        torch.distributed.destroy_process_group()


def _hn_nce_step(device: str, rank: int = 0, world_size: int = 1) -> tuple[float, dict[str, torch.Tensor]]:
    """One HN-NCE forward/backward of a tiny stage-2 model on this process's share of a fixed batch of 16, with
    `gather_across_processes` (so with negatives of every process)."""
    from ..configuration_tfcovr import TFCoVRConfig, TFCoVRVisionConfig
    from ..modeling_tfcovr import TFCoVRModel

    torch.manual_seed(0)
    config = TFCoVRConfig(
        vision_config=TFCoVRVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
            num_frames=2,
        ),
        text_config=dict(TINY_TEXT, vocab_size=50),
        embed_dim=16,
        combiner_projection_dim=32,
        combiner_hidden_dim=32,
        combiner_dropout=0.0,
    )
    model = TFCoVRModel(config).to(device)
    model.gather_across_processes = True
    generator = torch.Generator().manual_seed(1)
    query, target = torch.randn(16, 16, generator=generator), torch.randn(16, 16, generator=generator)
    text = torch.randn(16, model.config.text_embed_dim, generator=generator)
    share = slice(rank * 16 // world_size, (rank + 1) * 16 // world_size)
    output = model(
        query_video_embeds=query[share].to(device),
        text_embeds=text[share].to(device),
        target_video_embeds=target[share].to(device),
        return_loss=True,
    )
    output.loss.backward()
    # The summed gradient of every process equals world_size times the one-process gradient (see gather_with_grad).
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    if world_size > 1:
        for grad in grads.values():
            torch.distributed.all_reduce(grad)
            grad /= world_size
    return float(output.loss), {name: grad.cpu() for name, grad in grads.items()}


def _accelerate(script: str, arguments: list[str], device: str, port: int) -> None:
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
    ]
    command += ["--cpu"] if device == "cpu" else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [*command, str(ROOT / "scripts" / script), *arguments], capture_output=True, text=True, env=env, timeout=600
    )
    if result.returncode:
        raise RuntimeError(f"accelerate launch {script} exited {result.returncode}: {result.stderr[-1500:]}")


def _benchmark(repeats: int) -> str:
    from ..configuration_tfcovr import TFCoVRVisionConfig
    from ..modeling_tfcovr import TFCoVRVisionModel

    model = TFCoVRVisionModel(TFCoVRVisionConfig()).cuda().eval()  # AIM ViT-B/16, 12 frames, 224 px
    lines = []
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        model.to(dtype)
        pixels = torch.randn(8, 12, 3, 224, 224, device="cuda", dtype=dtype)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with torch.no_grad():
            model(pixels)  # warm-up
            torch.cuda.synchronize()
            started = time.perf_counter()
            for _ in range(repeats):
                model(pixels)
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - started) / repeats
        peak = (torch.cuda.max_memory_allocated() - before) / 2**20
        lines.append(f"{precision} {8 / seconds:.1f} clips/s, peak +{peak:.0f} MiB")
    return f"{torch.cuda.get_device_name()}, batch 8: " + "; ".join(lines)


def run_checks(output_dir: Path, dry_run: bool, benchmark_repeats: int = 10) -> Checks:
    """Runs every check (see the module docstring); CUDA parts only when CUDA is available and not `dry_run`."""

    cuda = torch.cuda.is_available() and not dry_run
    no_cuda = "dry run" if dry_run else "no CUDA device"
    checks = Checks()
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    output_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"check-gpu: {'CUDA ' + torch.cuda.get_device_name() if cuda else 'CPU only (' + no_cuda + ')'}; "
        f"work folder {output_dir}",
        flush=True,
    )
    started = time.perf_counter()
    bench = Workbench(output_dir)
    checks.record("tiny data", "PASS", f"synthetic gym in {bench.data}", time.perf_counter() - started)

    # CPU references: both stages in float32, the embeddings, the pipeline's answers.
    reference = {}
    for stage in ("stage1", "stage2"):

        def cpu_reference(stage=stage):
            if stage == "stage2":
                from ..data.embeddings import write_embeddings_parquet

                ids, embeds = _extract(bench.stage1_model, bench.data, "cpu")
                reference["embeddings"] = (ids, embeds)
                write_embeddings_parquet(bench.embeddings / "embeddings.parquet", ids, embeds)
            out = output_dir / f"{stage}-cpu-fp32"
            _train(stage, getattr(bench, stage)(out, "cpu", "fp32"))
            reference[stage] = _losses(out)
            return len(reference[stage]) == 4 and all(
                map(math.isfinite, reference[stage])
            ), f"CPU float32 losses {[round(x, 4) for x in reference[stage]]}"

        checks.run(f"{stage} Trainer on CPU (reference)", cpu_reference)

    for stage in ("stage1", "stage2"):
        for precision in PRECISIONS:
            name = f"{stage} Trainer on CUDA {precision}"
            if not cuda or stage not in reference:
                checks.skip(name, no_cuda if not cuda else "no CPU reference")
                continue
            if precision == "bf16" and not torch.cuda.is_bf16_supported():
                checks.skip(name, "this GPU has no bfloat16")
                continue

            def on_cuda(stage=stage, precision=precision):
                out = output_dir / f"{stage}-cuda-{precision}"
                _train(stage, getattr(bench, stage)(out, "cuda", precision))
                return _compare_losses(reference[stage], _losses(out), precision)

            checks.run(name, on_cuda)

    def gathered_negatives():
        import torch.multiprocessing as mp

        device = "cuda" if cuda else "cpu"
        one_loss, one_grads = _hn_nce_step(device)
        with tempfile.TemporaryDirectory() as folder:
            result = os.path.join(folder, "result.pt")
            mp.spawn(_gather_worker, args=(2, os.path.join(folder, "init"), device, result), nprocs=2, join=True)
            two = torch.load(result, weights_only=True)
        worst = max(float((one_grads[k] - two["grads"][k]).abs().max()) for k in one_grads)
        ok = abs(one_loss - two["loss"]) <= 1e-5 and worst <= 1e-5 and set(one_grads) == set(two["grads"])
        return ok, (
            f"2 processes x 8 on {device} (gloo) vs 1 x 16: loss {two['loss']:.6f} vs {one_loss:.6f}, "
            f"max gradient difference {worst:.1e} (<= 1e-5)"
        )

    checks.run(f"HN-NCE gathered negatives ({'one GPU' if cuda else 'CPU'})", gathered_negatives)

    if cuda and "embeddings" in reference:

        def extraction():
            ids, embeds = _extract(bench.stage1_model, bench.data, "cuda")
            cpu_ids, cpu_embeds = reference["embeddings"]
            difference = float(np.abs(embeds - cpu_embeds).max())
            return (
                ids == cpu_ids and difference <= 1e-4,
                f"{len(ids)} videos, max |cuda - cpu| {difference:.1e} <= 1e-4",
            )

        checks.run("extraction on CUDA", extraction)
    else:
        checks.skip("extraction on CUDA", no_cuda if not cuda else "no CPU reference")

    model_dir = output_dir / "stage2-cpu-fp32"
    if (model_dir / "config.json").exists():

        def pipeline_cpu():
            reference["pipeline"] = _pipeline_answers(model_dir, bench.data, "cpu")
            return all(len(a) == 5 for a in reference["pipeline"]), f"{len(reference['pipeline'])} queries answered"

        checks.run("pipeline on CPU (reference)", pipeline_cpu)
    if cuda and "pipeline" in reference:

        def pipeline_cuda():
            answers = _pipeline_answers(model_dir, bench.data, "cuda")
            same = [[v for v, _ in a] for a in answers] == [[v for v, _ in a] for a in reference["pipeline"]]
            worst = max(abs(s - t) for a, b in zip(answers, reference["pipeline"]) for (_, s), (_, t) in zip(a, b))
            return same and worst <= 1e-4, f"same top-5: {same}, max score difference {worst:.1e} <= 1e-4"

        checks.run("pipeline on CUDA", pipeline_cuda)
    else:
        checks.skip("pipeline on CUDA", no_cuda if not cuda else "no CPU reference")

    try:
        import faiss

        gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    except ImportError:
        faiss, gpus = None, 0
    if cuda and gpus and "embeddings" in reference:

        def faiss_gpu():
            from ..retrieval_index import RetrievalIndex

            ids, embeds = reference["embeddings"]
            index = RetrievalIndex(ids, embeds)
            exact = index.search(embeds, top_k=10)
            normalised = np.ascontiguousarray(index.embeddings, dtype=np.float32)
            gpu_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(normalised.shape[1]))
            gpu_index.add(normalised)
            _, found = gpu_index.search(normalised, 10)
            same = bool((found == exact.indices).all())
            return same, f"{len(ids)} queries: same top-10 as exact search: {same}"

        checks.run("FAISS on the GPU", faiss_gpu)
    else:
        checks.skip(
            "FAISS on the GPU",
            no_cuda if not cuda else ("faiss is not installed" if faiss is None else "faiss has no GPU support here"),
        )

    device = "cuda" if cuda else "cpu"
    for number, (stage, script) in enumerate((("stage1", "train_classifier.py"), ("stage2", "train_retrieval.py"))):
        if stage not in reference:
            checks.skip(f"{stage} through accelerate launch", "no reference run")
            continue

        def launched(stage=stage, script=script, number=number):
            out = output_dir / f"{stage}-accelerate-{device}"
            _accelerate(script, getattr(bench, stage)(out, device, "fp32"), device, 29600 + number)
            base = reference[stage]
            if cuda:  # against the in-process CUDA float32 run
                base = _losses(output_dir / f"{stage}-cuda-fp32")
            ok, detail = _compare_losses(base, _losses(out), "fp32")
            return ok, f"accelerate launch on {device}: {detail}"

        checks.run(f"{stage} through accelerate launch ({device})", launched)

    if cuda:
        checks.run("model benchmark (AIM ViT-B/16, 12 frames, 224 px)", lambda: (True, _benchmark(benchmark_repeats)))
    else:
        checks.skip(
            "model benchmark (AIM ViT-B/16, 12 frames, 224 px)", f"{no_cuda}; CPU figures: scripts/bench/model.py"
        )
    (output_dir / "check_gpu.json").write_text(json.dumps(checks.rows, indent=2))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = command_parser(__doc__)
    parser.add_argument("--output-dir", type=Path, default=Path("runs/check-gpu"))
    parser.add_argument("--dry-run", action="store_true", help="CPU only: run what the CPU can, skip the rest")
    parser.add_argument("--benchmark-repeats", type=int, default=10)
    args = parser.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    checks = run_checks(args.output_dir, args.dry_run, args.benchmark_repeats)
    counts = {status: sum(row["status"] == status for row in checks.rows) for status in ("PASS", "FAIL", "SKIP")}
    print(
        f"check-gpu: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped in "
        f"{time.perf_counter() - started:.0f}s" + (f"; failed: {', '.join(checks.failed)}" if checks.failed else "")
    )
    return 1 if checks.failed else 0
