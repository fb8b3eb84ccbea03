"""Publishing a trained model folder or the dataset folder to the Hugging Face Hub."""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import TFCoVRError
from .model_card import validate_card

# Never uploaded: Trainer checkpoints, logs, caches, pickles.
IGNORE_PATTERNS = [
    "checkpoint-*",
    "checkpoint-*/*",
    "runs/*",
    "*.pt",
    "*.pth",
    "*.bin",
    "*.pkl",
    "*.pickle",
    "__pycache__/*",
    ".*",
    "*/.*",
    "*.tmp*",
    "log_history.json",
    "training_args.*",
]
MODEL_REQUIRED = ("config.json", "model.safetensors", "README.md")
DATASET_REQUIRED = ("README.md",)


@dataclass
class UploadPlan:
    """What an upload sends: the files (relative paths) with their sizes, and where to."""

    repo_id: str
    repo_type: str
    folder: Path
    files: list[tuple[str, int]]

    def describe(self) -> str:
        total = sum(size for _, size in self.files)
        lines = [
            f"{self.repo_type} repo {self.repo_id} <- {self.folder} ({len(self.files)} files, {total / 1e6:.2f} MB)"
        ]
        lines += [f"  {path}  ({size} bytes)" for path, size in self.files]
        return "\n".join(lines)


def plan_upload(folder: str | os.PathLike, repo_id: str, repo_type: str = "model") -> UploadPlan:
    """Lists the files an upload of `folder` would send and checks that the folder is complete.

    A model folder must have its config, safetensors weights, model card and — for loading with
    `trust_remote_code` — every code file that `auto_map` and `custom_pipelines` name. A dataset
    folder must have its card and a file for every `data_files` pattern of the card's `configs:`.
    The card must pass the Hub's metadata checks, run offline ([`validate_card`]).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TFCoVRError(f"{folder} is not a folder")
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if not any(fnmatch.fnmatch(relative, pattern) for pattern in IGNORE_PATTERNS):
            files.append((relative, path.stat().st_size))
    names = {name for name, _ in files}
    required = MODEL_REQUIRED if repo_type == "model" else DATASET_REQUIRED
    missing = [name for name in required if name not in names]
    if repo_type == "model" and (folder / "config.json").exists():
        missing += _missing_code_files(json.loads((folder / "config.json").read_text()), names)
    if repo_type == "dataset" and "README.md" in names:
        missing += _missing_data_files(folder / "README.md", names)
    if missing:
        raise TFCoVRError(f"{folder} is not ready to publish: missing {', '.join(missing)}")
    problems = validate_card(folder / "README.md", repo_type)
    if problems:
        raise TFCoVRError(f"{folder}: the card would be refused by the Hub:\n  " + "\n  ".join(problems))
    return UploadPlan(repo_id, repo_type, folder, files)


def _missing_code_files(config: dict, names: set[str]) -> list[str]:
    """The code files that `auto_map` and `custom_pipelines` name (what `trust_remote_code` imports)
    and that are not in the folder."""
    references = list(config.get("auto_map", {}).values())
    references += [pipeline.get("impl", "") for pipeline in config.get("custom_pipelines", {}).values()]
    # an auto_map entry is "module.Class", or a list [slow, fast] for tokenizers (None for a missing one)
    modules = {
        ref.split(".")[0] for entry in references for ref in (entry if isinstance(entry, list) else [entry]) if ref
    }
    return sorted(f"{module}.py" for module in modules if f"{module}.py" not in names)


def _missing_data_files(card: Path, names: set[str]) -> list[str]:
    """The `data_files` patterns of the card's `configs:` that match no file of the folder: a card
    whose data has not been built yet would publish a dataset that does not load."""
    from huggingface_hub import metadata_load

    patterns = []
    for config in (metadata_load(card) or {}).get("configs", []):
        data_files = config.get("data_files", [])
        for entry in data_files if isinstance(data_files, list) else [data_files]:
            paths = entry.get("path", []) if isinstance(entry, dict) else entry
            patterns += [paths] if isinstance(paths, str) else list(paths)
    missing = [pattern for pattern in patterns if not any(fnmatch.fnmatch(name, pattern) for name in names)]
    if not missing:
        return []
    return [
        ", ".join(missing) + " (the data files the card's configs name; a builder such as scripts/build_tfcovr.py "
        "writes them)"
    ]


def upload(plan: UploadPlan, private: bool = False, token: str | None = None, commit_message: str | None = None) -> str:
    """Creates the repository if needed and uploads exactly the planned files; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=plan.repo_id,
        repo_type=plan.repo_type,
        folder_path=str(plan.folder),
        allow_patterns=[name for name, _ in plan.files],
        commit_message=commit_message or f"Upload {plan.folder.name}",
    )
    return str(getattr(info, "commit_url", info))


__all__ = ["UploadPlan", "plan_upload", "upload", "IGNORE_PATTERNS"]
