"""Local folder or Hugging Face Hub repository: one resolution for every entry point of the library.

A path that exists on disk is used as it is. Anything else must be a Hub repository id (`org/name`), which is
resolved by `huggingface_hub` itself (`snapshot_download` / `hf_hub_download`), at `revision` (a branch, a tag or
a commit hash; `main` by default). Downloads land in the Hub cache (`HF_HOME` / `HF_HUB_CACHE`), so the same call
works offline (`HF_HUB_OFFLINE=1`) once the revision has been fetched.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import TFCoVRError

REPO_TYPES = ("model", "dataset", "space")


def is_local(path_or_repo_id: str | os.PathLike) -> bool:
    """Whether `path_or_repo_id` names something on disk (then it is never looked up on the Hub)."""
    return os.path.exists(os.fspath(path_or_repo_id))


def check_repo_id(repo_id: str, what: str = "path") -> str:
    """`repo_id` if it is a valid Hub repository id; else a `FileNotFoundError` saying that it is neither a local
    path nor a repository id (the usual cause: a typo in a local path)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise FileNotFoundError(
            f"{what} {repo_id!r} is neither an existing file or folder nor a Hub repository id"
        ) from None
    return repo_id


def resolve_folder(
    path_or_repo_id: str | os.PathLike,
    revision: str | None = None,
    repo_type: str = "model",
    allow_patterns: list[str] | None = None,
    token: str | bool | None = None,
) -> Path:
    """The local folder for `path_or_repo_id`: the folder itself, or the cached snapshot of the Hub repository at
    `revision` (downloaded with `snapshot_download` when online, read from the cache when offline).

    Raises:
        FileNotFoundError: `path_or_repo_id` is neither on disk nor a valid repository id.
        TFCoVRError: the repository (or revision) cannot be found online or in the cache.
    """
    if repo_type not in REPO_TYPES:
        raise ValueError(f"repo_type must be one of {REPO_TYPES}, got {repo_type!r}")
    if is_local(path_or_repo_id):
        path = Path(path_or_repo_id)
        if not path.is_dir():
            raise TFCoVRError(f"{str(path)!r} is a file; a folder (or a Hub repository id) is expected")
        return path
    repo_id = check_repo_id(os.fspath(path_or_repo_id))
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                repo_id, repo_type=repo_type, revision=revision, allow_patterns=allow_patterns, token=token
            )
        )
    except (HfHubHTTPError, LocalEntryNotFoundError) as error:
        raise TFCoVRError(
            f"cannot get the {repo_type} repository {repo_id!r} at revision {revision or 'main'!r}: "
            f"{type(error).__name__}: {str(error).splitlines()[0]}"
        ) from None


def resolve_file(
    path_or_repo_id: str | os.PathLike,
    filename: str,
    revision: str | None = None,
    repo_type: str = "model",
    token: str | bool | None = None,
) -> Path | None:
    """`filename` inside a local folder or a Hub repository at `revision` (through `hf_hub_download` and its cache),
    or `None` when the folder or repository has no such file."""
    if is_local(path_or_repo_id):
        path = Path(path_or_repo_id) / filename
        return path if path.is_file() else None
    repo_id = check_repo_id(os.fspath(path_or_repo_id))
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RemoteEntryNotFoundError
    from huggingface_hub.file_download import _CACHED_NO_EXIST

    try:
        return Path(hf_hub_download(repo_id, filename, repo_type=repo_type, revision=revision, token=token))
    except RemoteEntryNotFoundError:  # the repository has no such file
        return None
    except (HfHubHTTPError, LocalEntryNotFoundError) as error:
        # offline: the cache remembers files a revision does not have (`.no_exist/<commit>/<file>`)
        if try_to_load_from_cache(repo_id, filename, revision=revision, repo_type=repo_type) is _CACHED_NO_EXIST:
            return None
        raise TFCoVRError(
            f"cannot get {filename!r} of the {repo_type} repository {repo_id!r} at revision "
            f"{revision or 'main'!r}: {type(error).__name__}: {str(error).splitlines()[0]}"
        ) from None


def load_hub_dataset(
    path_or_repo_id: str | os.PathLike,
    name: str | None = None,
    split: str | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    **kwargs,
):
    """`datasets.load_dataset` of a local dataset folder or of a Hub dataset repository at `revision`.

    The repository is fetched with `snapshot_download` (the Hub cache) and loaded as the folder it is there. Online,
    `datasets.load_dataset(repo_id, revision=...)` does the same; offline (`HF_HUB_OFFLINE=1`), `datasets` falls
    back to the most recently prepared copy of the repository in its own cache, whatever its revision, while this
    reads the snapshot of exactly the revision asked for.
    """
    import datasets

    folder = resolve_folder(path_or_repo_id, revision=revision, repo_type="dataset", token=token)
    return datasets.load_dataset(str(folder), name, split=split, **kwargs)


__all__ = ["is_local", "check_repo_id", "resolve_folder", "resolve_file", "load_hub_dataset"]
