"""Model cards (README.md) for saved TF-CoVR models."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

# The one citation of the paper: model cards, dataset cards and the README all use it (a test checks).
CITATION = """@inproceedings{gupta2025playtoreplay,
  title         = {From Play to Replay: Composed Video Retrieval for Temporally Fine-Grained Videos},
  author        = {Gupta, Animesh and Parmar, Jay and Dave, Ishan Rajendrakumar and Shah, Mubarak},
  booktitle     = {Advances in Neural Information Processing Systems (NeurIPS)},
  year          = {2025},
  eprint        = {2506.05274},
  archivePrefix = {arXiv}
}"""

_TASKS = {
    "retrieval": ("composed-video-retrieval", "Composed video retrieval: a query video plus a modification text is "
                  "embedded and compared with gallery video embeddings (TF-CoVR-Base: AIM video encoder, text encoder, "
                  "CLIP4Cir combiner, trained with HN-NCE)."),
    "classification": ("video-classification", "Stage 1 of TF-CoVR: the AIM video encoder fine-tuned on fine-grained "
                       "action classification; its pooled embedding is the video representation used for retrieval."),
}


def format_metrics_table(metrics: Mapping[str, float]) -> str:
    """A Markdown table of numeric metrics, two decimals."""
    rows = [f"| {name} | {value:.2f} |" for name, value in metrics.items() if isinstance(value, (int, float))]
    return "\n".join(["| metric | value |", "|---|---|", *rows])


def write_model_card(
    output_dir: str | os.PathLike,
    task: str,
    training_data: str,
    metrics: Mapping[str, float] | None = None,
    command: str | None = None,
    extra: str = "",
) -> Path:
    """Writes `README.md` in `output_dir`: task, training data, metrics with the command that
    produced them, intended use, limitations and citation.

    Args:
        task: `"retrieval"` or `"classification"`.
        training_data: a sentence naming the data the model was trained on.
        metrics: evaluation results (names as keys).
        command: the command line that trained/evaluated; defaults to this process's.
    """
    pipeline_tag, description = _TASKS[task]
    command = command or " ".join(shlex.quote(part) for part in [os.path.basename(sys.executable), *sys.argv])
    metrics = dict(metrics or {})
    front_matter = {"library_name": "transformers", "pipeline_tag": pipeline_tag, "license": "mit",
                    "tags": ["tf-covr", "composed-video-retrieval", "video", "aim"]}
    lines = ["---", *(f"{key}: {json.dumps(value)}" for key, value in front_matter.items()), "---", "",
             "# TF-CoVR model", "", description, "", "## Training data", "", training_data, ""]
    if metrics:
        lines += ["## Results", "", format_metrics_table(metrics), "", "Produced by:", "", "```bash", command, "```", ""]
    lines += [
        "## How to use", "",
        "```python",
        "from transformers import AutoModel, AutoProcessor",
        'model = AutoModel.from_pretrained("PATH", trust_remote_code=True)',
        'processor = AutoProcessor.from_pretrained("PATH", trust_remote_code=True)',
        "```", "",
        "or `pipeline(\"composed-video-retrieval\", model=\"PATH\", trust_remote_code=True)`.", "",
        "## Intended use and limitations", "",
        "Research on composed video retrieval and fine-grained action understanding (gymnastics, diving, "
        "and similar sports). The model only knows the actions and the kind of modification texts of its "
        "training data; it is not a general video search engine. Models trained on the project's synthetic "
        "benchmark are for testing the pipeline and show nothing about real videos.", "",
        extra, "",
        "## Citation", "", "```bibtex", CITATION, "```", "",
    ]
    path = Path(output_dir) / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


__all__ = ["write_model_card", "format_metrics_table", "CITATION"]
