"""Model cards (README.md) for saved TF-CoVR models and dataset cards for saved galleries, written with
`huggingface_hub`'s card classes (`ModelCard` / `ModelCardData` / `EvalResult`, `DatasetCard` / `DatasetCardData`),
and the offline checks `scripts/push_to_hub.py --dry-run` runs on a card before anything is uploaded."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

# The one citation of the paper: model cards, dataset cards and the README all use it (a test checks).
CITATION = """@inproceedings{gupta2025playtoreplay,
  title         = {From Play to Replay: Composed Video Retrieval for Temporally Fine-Grained Videos},
  author        = {Gupta, Animesh and Parmar, Jay and Dave, Ishan Rajendrakumar and Shah, Mubarak},
  booktitle     = {Advances in Neural Information Processing Systems (NeurIPS)},
  year          = {2025},
  eprint        = {2506.05274},
  archivePrefix = {arXiv}
}"""

LIBRARY_TASK = "composed-video-retrieval"
"""The library's own task name (the pipeline's); the Hub has no such pipeline tag, so cards carry it in `tags`."""

# The Hub's pipeline tags: the keys of PIPELINE_DATA in huggingface.js (packages/tasks/src/pipelines.ts).
KNOWN_PIPELINE_TAGS = frozenset(
    {
        "biology",
        "text-classification",
        "token-classification",
        "table-question-answering",
        "question-answering",
        "zero-shot-classification",
        "translation",
        "summarization",
        "feature-extraction",
        "text-generation",
        "text2text-generation",
        "fill-mask",
        "sentence-similarity",
        "text-to-speech",
        "text-to-audio",
        "automatic-speech-recognition",
        "audio-to-audio",
        "audio-classification",
        "audio-text-to-text",
        "voice-activity-detection",
        "depth-estimation",
        "image-classification",
        "object-detection",
        "image-segmentation",
        "text-to-image",
        "image-to-text",
        "image-to-image",
        "image-to-video",
        "unconditional-image-generation",
        "video-classification",
        "reinforcement-learning",
        "robotics",
        "tabular-classification",
        "tabular-regression",
        "tabular-to-text",
        "table-to-text",
        "multiple-choice",
        "text-ranking",
        "text-retrieval",
        "time-series-forecasting",
        "text-to-video",
        "image-text-to-text",
        "visual-question-answering",
        "document-question-answering",
        "zero-shot-image-classification",
        "graph-ml",
        "mask-generation",
        "zero-shot-object-detection",
        "text-to-3d",
        "image-to-3d",
        "image-feature-extraction",
        "video-text-to-text",
        "keypoint-detection",
        "visual-document-retrieval",
        "any-to-any",
        "other",
    }
)

# License identifiers the Hub accepts in `license:` (https://huggingface.co/docs/hub/repositories-licenses).
KNOWN_LICENSES = frozenset(
    {
        "apache-2.0",
        "mit",
        "openrail",
        "bigscience-openrail-m",
        "creativeml-openrail-m",
        "bigscience-bloom-rail-1.0",
        "bigcode-openrail-m",
        "afl-3.0",
        "artistic-2.0",
        "bsl-1.0",
        "bsd",
        "bsd-2-clause",
        "bsd-3-clause",
        "bsd-3-clause-clear",
        "c-uda",
        "cc",
        "cc0-1.0",
        "cc-by-2.0",
        "cc-by-2.5",
        "cc-by-3.0",
        "cc-by-4.0",
        "cc-by-sa-3.0",
        "cc-by-sa-4.0",
        "cc-by-nc-2.0",
        "cc-by-nc-3.0",
        "cc-by-nc-4.0",
        "cc-by-nd-4.0",
        "cc-by-nc-nd-3.0",
        "cc-by-nc-nd-4.0",
        "cc-by-nc-sa-2.0",
        "cc-by-nc-sa-3.0",
        "cc-by-nc-sa-4.0",
        "cdla-sharing-1.0",
        "cdla-permissive-1.0",
        "cdla-permissive-2.0",
        "wtfpl",
        "ecl-2.0",
        "epl-1.0",
        "epl-2.0",
        "etalab-2.0",
        "eupl-1.1",
        "eupl-1.2",
        "agpl-3.0",
        "gfdl",
        "gpl",
        "gpl-2.0",
        "gpl-3.0",
        "lgpl",
        "lgpl-2.1",
        "lgpl-3.0",
        "isc",
        "h-research",
        "intel-research",
        "lppl-1.3c",
        "ms-pl",
        "apple-ascl",
        "apple-amlr",
        "mpl-2.0",
        "odc-by",
        "odbl",
        "openrail++",
        "osl-3.0",
        "postgresql",
        "ofl-1.1",
        "ncsa",
        "unlicense",
        "zlib",
        "pddl",
        "lgpl-lr",
        "deepfloyd-if-license",
        "llama2",
        "llama3",
        "llama3.1",
        "llama3.2",
        "llama3.3",
        "gemma",
        "unknown",
        "other",
    }
)

_TASKS = {
    # (pipeline_tag, model-index task name, description)
    "retrieval": (
        "feature-extraction",
        "Composed Video Retrieval",
        "Composed video retrieval: a query video plus a modification text is embedded and compared with "
        "gallery video embeddings (TF-CoVR-Base: AIM video encoder, text encoder, CLIP4Cir combiner, trained "
        "with HN-NCE).",
    ),
    "classification": (
        "video-classification",
        "Video Classification",
        "Stage 1 of TF-CoVR: the AIM video encoder fine-tuned on fine-grained action classification; "
        "its pooled embedding is the video representation used for retrieval.",
    ),
}
_SPLITS = ("train", "val", "validation", "test")
_PROTOCOL_NOTES = {
    "official": "the official protocol (gallery = the split's target videos in row order, duplicates kept)",
    "unique": "the de-duplicated gallery of all valid targets",
}


def _is_repo_id(name: str | None) -> bool:
    """A Hub repository id (`org/name`) and not an existing local path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not name or os.path.exists(name) or name.count("/") != 1:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _metric_entries(
    metrics: Mapping[str, Any], protocol: str | None = None
) -> list[tuple[str | None, str | None, str, float]]:
    """(protocol, split, metric, value) for every number in `metrics`: flat (`{"map@10": 12.5}`, `{"val map@10": ...}`)
    or labelled by protocol (`{"official": {"map@50": ...}, "unique": {...}}`, also nested one level further)."""
    entries = []
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            entries += _metric_entries(value, protocol=key if protocol is None else f"{protocol}/{key}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        split, _, name = key.partition(" ") if key.split(" ", 1)[0] in _SPLITS and " " in key else (None, "", key)
        entries.append((protocol, split, name, float(value)))
    return entries


def metrics_to_eval_results(
    metrics: Mapping[str, Any],
    task: str,
    dataset_id: str,
    dataset_name: str,
    dataset_split: str | None = None,
    dataset_revision: str | None = None,
) -> list[EvalResult]:
    """`EvalResult`s (the card's `model-index`) for measured metrics.

    Metric names keep the library's spelling (`map@50`, `recall@10`, `accuracy`) as `metric_type`; a split prefix
    (`"val map@10"`) becomes `dataset_split`; the protocol a value was computed with (a top-level key of a
    protocol-labelled dict, e.g. `"official"` / `"unique"`) becomes `metric_config` and part of `metric_name`.
    """
    pipeline_tag, task_name, _ = _TASKS[task]
    results = []
    for protocol, split, name, value in _metric_entries(metrics):
        pretty = name.replace("map@", "mAP@").replace("recall@", "Recall@").replace("r@", "R@")
        if protocol:
            pretty += f" ({protocol} protocol)"
        results.append(
            EvalResult(
                task_type=pipeline_tag,
                task_name=task_name,
                dataset_type=dataset_id,
                dataset_name=dataset_name,
                dataset_split=split or dataset_split,
                dataset_revision=dataset_revision,
                metric_type=name.lower(),
                metric_value=round(value, 4),
                metric_name=pretty,
                metric_config=protocol,
            )
        )
    return results


def format_metrics_table(metrics: Mapping[str, Any]) -> str:
    """A Markdown table of numeric metrics, two decimals (a `protocol` column when they are labelled by protocol)."""
    entries = _metric_entries(metrics)
    if any(protocol for protocol, *_ in entries):
        rows = [
            f"| {protocol or ''} | {(split + ' ') if split else ''}{name} | {value:.2f} |"
            for protocol, split, name, value in entries
        ]
        return "\n".join(["| protocol | metric | value |", "|---|---|---|", *rows])
    rows = [f"| {(split + ' ') if split else ''}{name} | {value:.2f} |" for _, split, name, value in entries]
    return "\n".join(["| metric | value |", "|---|---|", *rows])


def _usage(task: str, model_id: str) -> str:
    if task == "classification":
        return "\n".join(
            [
                "```python",
                "from transformers import AutoModelForVideoClassification, AutoVideoProcessor",
                "",
                f'model = AutoModelForVideoClassification.from_pretrained("{model_id}", trust_remote_code=True)',
                f'video_processor = AutoVideoProcessor.from_pretrained("{model_id}", trust_remote_code=True)',
                'logits = model(**video_processor(["clip.mp4"])).logits',
                "```",
                "",
                "With the `modeling_tfcovr` package installed, `modeling_tfcovr.load_vision_encoder"
                f'("{model_id}", revision="main")` gives the video encoder alone (the embedding used for retrieval).',
            ]
        )
    return "\n".join(
        [
            "```python",
            "from transformers import pipeline",
            "",
            f'pipe = pipeline("{LIBRARY_TASK}", model="{model_id}", revision="main", trust_remote_code=True)',
            'gallery = pipe.index(["a.mp4", "b.mp4", "c.mp4"])',
            'print(pipe(video="query.mp4", text="show it with one more rotation", gallery=gallery, top_k=2))',
            "```",
            "",
            "or `AutoModel.from_pretrained(...)` / `AutoProcessor.from_pretrained(...)` with `trust_remote_code=True` "
            "(`get_query_features`, `get_video_features`).",
        ]
    )


def build_model_card(
    task: str,
    training_data: str,
    metrics: Mapping[str, Any] | None = None,
    command: str | None = None,
    extra: str = "",
    *,
    model_id: str = "your-name/tfcovr-model",
    model_name: str | None = None,
    base_model: str | Sequence[str] | None = None,
    datasets: str | Sequence[str] | None = None,
    dataset_id: str | None = None,
    dataset_name: str | None = None,
    dataset_split: str | None = None,
    license: str = "mit",
) -> ModelCard:
    """A `ModelCard`: metadata (`library_name`, a pipeline tag the Hub knows, `license`, `tags` with the library's
    task, `base_model`, `datasets`, a `model-index` with the measured `metrics`) and the text (task, training data,
    results with the command that produced them, usage, intended use and limitations, citation).

    Args:
        task: `"retrieval"` or `"classification"`.
        training_data: a sentence naming the data the model was trained on.
        metrics: evaluation results, flat (`{"test map@10": 81.2}`) or by protocol (`{"official": {...}}`).
        command: the command line that trained/evaluated; defaults to this process's.
        model_id: the repository id the usage snippet loads.
        base_model / datasets: Hub ids; local paths are left out of the metadata (the Hub only knows ids).
        dataset_id / dataset_name / dataset_split: what `model-index` says the metrics were measured on
            (default: the first of `datasets`, else `"tf-covr"`).
    """
    pipeline_tag, _, description = _TASKS[task]
    command = command or " ".join(shlex.quote(part) for part in [os.path.basename(sys.executable), *sys.argv])
    metrics = dict(metrics or {})
    base_models = [base_model] if isinstance(base_model, str) else list(base_model or [])
    base_models = [name for name in base_models if _is_repo_id(name)]
    dataset_ids = [datasets] if isinstance(datasets, str) else list(datasets or [])
    dataset_ids = [name for name in dataset_ids if _is_repo_id(name)]
    dataset_id = dataset_id or (dataset_ids[0] if dataset_ids else "tf-covr")
    eval_results = metrics_to_eval_results(metrics, task, dataset_id, dataset_name or dataset_id, dataset_split)
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        license=license,
        tags=["tf-covr", LIBRARY_TASK, "video", "video-retrieval", "aim", "custom_code"],
        base_model=(base_models[0] if len(base_models) == 1 else base_models) or None,
        datasets=dataset_ids or None,
        model_name=model_name or model_id.split("/")[-1],
        eval_results=eval_results or None,
    )
    lines = ["# TF-CoVR model", "", description, "", "## Training data", "", training_data, ""]
    if metrics:
        notes = [
            f"`{key}`: {note}"
            for key, note in _PROTOCOL_NOTES.items()
            if any(protocol == key for protocol, *_ in _metric_entries(metrics))
        ]
        lines += ["## Results", "", format_metrics_table(metrics), ""]
        lines += ["Protocols: " + "; ".join(notes) + ".", ""] if notes else []
        lines += ["Produced by:", "", "```bash", command, "```", ""]
    lines += [
        "## How to use",
        "",
        _usage(task, model_id),
        "",
        "## Intended use and limitations",
        "",
        "Research on composed video retrieval and fine-grained action understanding (gymnastics, diving, "
        "and similar sports). The model only knows the actions and the kind of modification texts of its "
        "training data; it is not a general video search engine. Models trained on the project's synthetic "
        "benchmark are for testing the pipeline and show nothing about real videos.",
        "",
        extra,
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines))


def write_model_card(
    output_dir: str | os.PathLike,
    task: str,
    training_data: str,
    metrics: Mapping[str, Any] | None = None,
    command: str | None = None,
    extra: str = "",
    **card_kwargs: Any,
) -> Path:
    """Writes [`build_model_card`]'s card as `README.md` in `output_dir` and returns its path."""
    card = build_model_card(task, training_data, metrics, command, extra, **card_kwargs)
    path = Path(output_dir) / "README.md"
    card.save(path)
    return path


def build_gallery_card(
    num_videos: int, dim: int, has_paths: bool, data_file: str, license: str = "mit", model_id: str | None = None
) -> DatasetCard:
    """The `DatasetCard` of a saved gallery (a [`RetrievalIndex`] pushed as a dataset repository): one parquet
    config with its features, and how to load it."""
    features = [{"name": "video_id", "dtype": "string"}, {"name": "embedding", "list": "float32", "length": dim}]
    if has_paths:
        features.append({"name": "path", "dtype": "string"})
    card_data = DatasetCardData(
        license=license,
        pretty_name="TF-CoVR gallery embeddings",
        tags=["tf-covr", LIBRARY_TASK, "embeddings", "video-retrieval"],
        size_categories=[_size_category(num_videos)],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": data_file}]}],
        dataset_info={"features": features},
    )
    made_with = f" with [`{model_id}`](https://huggingface.co/{model_id})" if model_id else ""
    body = "\n".join(
        [
            "# TF-CoVR gallery",
            "",
            f"{num_videos} video embeddings ({dim}-d, float32, L2-normalised when the index normalises){made_with}, "
            f"one row per video in `{data_file}`: a searchable gallery for composed video retrieval.",
            "",
            "```python",
            "from modeling_tfcovr import RetrievalIndex",
            "",
            'gallery = RetrievalIndex.from_pretrained("REPO_ID", revision="main")   # a dataset repository',
            "```",
            "",
            'The table also loads with `datasets.load_dataset("REPO_ID")`.',
            "",
            "## Citation",
            "",
            "```bibtex",
            CITATION,
            "```",
            "",
        ]
    )
    return DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")


def _size_category(count: int) -> str:
    for bound, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if count < bound:
            return label
    return "10M<n<100M"


def validate_card(path: str | os.PathLike, repo_type: str = "model") -> list[str]:
    """The problems the Hub would find in the card at `path`, checked offline (empty when there are none).

    `ModelCard.validate` posts the card to the Hub's `/api/validate-yaml`, which needs the network; this repeats the
    checks that matter here without it: the YAML front matter parses into a mapping (through the card classes),
    `license` is a license id the Hub knows (`other` also needs `license_name` and `license_link`), a model card's
    `pipeline_tag` is one of the Hub's pipeline tags and its `model-index` has the structure the Hub parses (every
    result with task type, dataset type and name, and metrics with type and value; read back through
    `huggingface_hub`'s own parser), `base_model` / `datasets` are repository ids, and a dataset card's `configs`
    name their data files.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        return [f"{path} does not exist"]
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return [f"{path} has no YAML metadata block (it must start with '---')"]
    try:
        front = yaml.safe_load(text.split("---", 2)[1])
    except yaml.YAMLError as error:
        return [f"{path}: the YAML metadata does not parse ({error})"]
    if not isinstance(front, dict):
        return [f"{path}: the YAML metadata is a {type(front).__name__}, not a mapping"]
    problems = _license_problems(front)
    if repo_type == "model":
        problems += _model_problems(front)
    else:
        problems += _dataset_problems(front)
    if not problems:  # finally as huggingface_hub itself reads it
        try:
            (ModelCard if repo_type == "model" else DatasetCard)(text)
        except ValueError as error:
            problems.append(str(error))
    return [f"{path}: {problem}" for problem in problems]


def _license_problems(front: dict) -> list[str]:
    licenses = front.get("license")
    if licenses is None:
        return ["no license"]
    problems = [
        f"license {name!r} is not a license id the Hub knows"
        for name in ([licenses] if isinstance(licenses, str) else licenses)
        if name not in KNOWN_LICENSES
    ]
    if licenses == "other" and not (front.get("license_name") and front.get("license_link")):
        problems.append("license 'other' needs license_name and license_link")
    return problems


def _model_problems(front: dict) -> list[str]:
    from huggingface_hub.repocard_data import model_index_to_eval_results

    problems = []
    tag = front.get("pipeline_tag")
    if tag is not None and tag not in KNOWN_PIPELINE_TAGS:
        problems.append(f"pipeline_tag {tag!r} is not a pipeline tag the Hub knows (keep custom task names in tags)")
    for key in ("base_model", "datasets"):
        names = front.get(key) or []
        problems += [
            f"{key} {name!r} is not a repository id"
            for name in ([names] if isinstance(names, str) else names)
            if not _is_repo_id(name)
        ]
    model_index = front.get("model-index")
    if model_index is not None:
        problems += _model_index_problems(model_index)
        if not problems:
            try:
                model_index_to_eval_results(model_index)
            except (KeyError, TypeError, ValueError) as error:
                problems.append(f"model-index does not parse ({type(error).__name__}: {error})")
    return problems


def _model_index_problems(model_index: Any) -> list[str]:
    if not isinstance(model_index, list) or not model_index:
        return ["model-index must be a non-empty list"]
    problems = []
    for entry in model_index:
        if not isinstance(entry, dict) or not entry.get("name"):
            problems.append("every model-index entry needs a name")
            continue
        for number, result in enumerate(entry.get("results") or [], 1):
            where = f"model-index result {number}"
            if not isinstance(result, dict):
                problems.append(f"{where} is not a mapping")
                continue
            if not (isinstance(result.get("task"), dict) and result["task"].get("type")):
                problems.append(f"{where} has no task type")
            dataset = result.get("dataset")
            if not (isinstance(dataset, dict) and dataset.get("type") and dataset.get("name")):
                problems.append(f"{where} needs a dataset with type and name")
            metrics = result.get("metrics")
            if not isinstance(metrics, list) or not metrics:
                problems.append(f"{where} has no metrics")
                continue
            for metric in metrics:
                if not (isinstance(metric, dict) and metric.get("type") and "value" in metric):
                    problems.append(f"{where}: every metric needs a type and a value")
                elif not isinstance(metric["value"], (int, float, str)) or isinstance(metric["value"], bool):
                    problems.append(f"{where}: metric {metric['type']!r} has a value that is not a number")
    return problems


def _dataset_problems(front: dict) -> list[str]:
    problems = []
    for config in front.get("configs") or []:
        if not isinstance(config, dict) or not config.get("config_name") or not config.get("data_files"):
            problems.append("every entry of configs needs config_name and data_files")
    return problems


__all__ = [
    "CITATION",
    "KNOWN_LICENSES",
    "KNOWN_PIPELINE_TAGS",
    "LIBRARY_TASK",
    "build_gallery_card",
    "build_model_card",
    "format_metrics_table",
    "metrics_to_eval_results",
    "validate_card",
    "write_model_card",
]
