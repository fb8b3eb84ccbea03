"""A local stand-in for the Hugging Face Hub's download endpoints, served on 127.0.0.1 for `HF_ENDPOINT`.

It serves what `huggingface_hub` (2.x), `transformers`, `datasets` and `evaluate` call to download repositories:

- `GET /api/{models,datasets,spaces}/{repo_id}[/revision/{revision}]`: repository info (`sha`, `siblings`);
- `GET /api/{type}s/{repo_id}/tree/{revision}[/{path}]?recursive=...`: the file listing (`snapshot_download`,
  `HfFileSystem`), one page;
- `POST /api/{type}s/{repo_id}/paths-info/{revision}`: info on given paths (`HfFileSystem`);
- `HEAD` / `GET /[datasets/|spaces/]{repo_id}/resolve/{revision}/{path}`: a file, with the headers
  `hf_hub_download` needs (`X-Repo-Commit`, `ETag`, and for large files `X-Linked-Etag` / `X-Linked-Size` as the
  Hub sends for LFS files, `Content-Length`), byte ranges, and the Hub's error codes
  (`X-Error-Code: RepoNotFound / RevisionNotFound / EntryNotFound`) on 404.

Repositories are folders of files committed on branches; a commit id is the SHA-1 of its content, as in git. Every
request is logged (`requests`); a request this server does not know is answered 404 and listed in `unknown`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

_LFS_SUFFIXES = (".safetensors", ".parquet", ".mp4", ".bin", ".npy")


@dataclass
class Repo:
    refs: dict[str, str] = field(default_factory=dict)  # branch -> commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit -> {path: content}


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class FakeHub:
    """Repositories served by [`serve`]."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[str] = []
        self.unknown: list[str] = []

    def commit(self, repo_type: str, repo_id: str, files: dict[str, bytes], branch: str = "main") -> str:
        """Commits `files` (path -> bytes; the whole tree) on `branch`; returns the 40-hex commit id."""
        repo = self.repos.setdefault((repo_type, repo_id), Repo())
        digest = hashlib.sha1(
            repr((repo_type, repo_id, branch, sorted((p, git_blob_sha1(c)) for p, c in files.items()))).encode()
        )
        commit = digest.hexdigest()
        repo.commits[commit] = dict(files)
        repo.refs[branch] = commit
        return commit

    def commit_folder(self, repo_type: str, repo_id: str, folder: str | Path, branch: str = "main") -> str:
        """Commits every file under `folder` (relative POSIX paths) on `branch`."""
        folder = Path(folder)
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.commit(repo_type, repo_id, files, branch)

    def resolve(self, repo_type: str, repo_id: str, revision: str) -> tuple[Repo | None, str | None]:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            return None, None
        if revision in repo.commits:
            return repo, revision
        return repo, repo.refs.get(revision)


def _entry(path: str, content: bytes) -> dict:
    entry = {"type": "file", "path": path, "size": len(content), "oid": git_blob_sha1(content)}
    if path.endswith(_LFS_SUFFIXES):
        entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
    return entry


def _folders(files: dict[str, bytes]) -> set[str]:
    return {"/".join(path.split("/")[:depth]) for path in files for depth in range(1, path.count("/") + 1)}


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # -- responses ---------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, value, headers: dict | None = None) -> None:
        self._send(200, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, code: str, message: str, commit: str | None = None, head: bool = False) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(404, json.dumps({"error": message}).encode(), headers, head=head)

    # -- routing -----------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        url = urlparse(self.path)
        path = url.path
        self.hub.requests.append(f"{method} {self.path}")
        repo = r"(?P<repo>[^/]+/[^/]+)"
        kind = r"(?P<kind>models|datasets|spaces)"
        if method in ("GET", "HEAD") and (
            m := re.fullmatch(
                rf"/(?:(?P<prefix>datasets|spaces)/)?{repo}/resolve/"
                rf"(?P<rev>[^/]+)/(?P<file>.+)",
                path,
            )
        ):
            repo_type = {"datasets": "dataset", "spaces": "space"}.get(m["prefix"], "model")
            return self._resolve(repo_type, m["repo"], unquote(m["rev"]), unquote(m["file"]), head=method == "HEAD")
        if method == "GET" and (m := re.fullmatch(rf"/api/{kind}/{repo}(?:/revision/(?P<rev>[^/]+))?", path)):
            return self._info(m["kind"][:-1], m["repo"], unquote(m["rev"] or "main"))
        if method == "GET" and (m := re.fullmatch(rf"/api/{kind}/{repo}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.+))?", path)):
            recursive = parse_qs(url.query).get("recursive", ["False"])[0].lower() == "true"
            return self._tree(m["kind"][:-1], m["repo"], unquote(m["rev"]), unquote(m["sub"] or ""), recursive)
        if method == "POST" and (m := re.fullmatch(rf"/api/{kind}/{repo}/paths-info/(?P<rev>[^/]+)", path)):
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            return self._paths_info(m["kind"][:-1], m["repo"], unquote(m["rev"]), form.get("paths", []))
        self.hub.unknown.append(f"{method} {self.path}")
        self._send(404, b'{"error": "unknown endpoint"}', {"Content-Type": "application/json"}, head=method == "HEAD")

    def _lookup(self, repo_type: str, repo_id: str, revision: str, head: bool = False):
        repo, commit = self.hub.resolve(repo_type, repo_id, revision)
        if repo is None:
            self._error("RepoNotFound", f"Repository {repo_id} not found", head=head)
            return None, None
        if commit is None:
            self._error("RevisionNotFound", f"Invalid rev id: {revision}", head=head)
            return None, None
        return repo, commit

    def _info(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo, commit = self._lookup(repo_type, repo_id, revision)
        if repo is None:
            return
        files = repo.commits[commit]
        self._json(
            {
                "id": repo_id,
                "_id": repo_id,
                "sha": commit,
                "private": False,
                "disabled": False,
                "gated": False,
                "lastModified": "2026-01-01T00:00:00.000Z",
                "tags": [],
                "siblings": [{"rfilename": name} for name in sorted(files)],
            }
        )

    def _tree(self, repo_type: str, repo_id: str, revision: str, sub: str, recursive: bool) -> None:
        repo, commit = self._lookup(repo_type, repo_id, revision)
        if repo is None:
            return
        files = repo.commits[commit]
        prefix = sub.rstrip("/") + "/" if sub else ""
        if sub and not any(p.startswith(prefix) for p in files):
            return self._error("EntryNotFound", f"{sub} does not exist", commit)
        entries = []
        for folder in sorted(_folders(files)):
            rest = folder[len(prefix) :]
            if folder.startswith(prefix) and rest and (recursive or "/" not in rest):
                entries.append({"type": "directory", "path": folder, "oid": hashlib.sha1(folder.encode()).hexdigest()})
        for path, content in sorted(files.items()):
            rest = path[len(prefix) :]
            if path.startswith(prefix) and (recursive or "/" not in rest):
                entries.append(_entry(path, content))
        self._json(entries)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str, paths: list[str]) -> None:
        repo, commit = self._lookup(repo_type, repo_id, revision)
        if repo is None:
            return
        files = repo.commits[commit]
        folders = _folders(files)
        entries = []
        for path in paths:
            path = path.strip("/")
            if path in files:
                entries.append(_entry(path, files[path]))
            elif path in folders:
                entries.append({"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest()})
        self._json(entries)

    def _resolve(self, repo_type: str, repo_id: str, revision: str, filename: str, head: bool) -> None:
        repo, commit = self._lookup(repo_type, repo_id, revision, head=head)
        if repo is None:
            return
        content = repo.commits[commit].get(filename)
        if content is None:
            return self._error("EntryNotFound", f"{filename} does not exist at {revision}", commit, head=head)
        entry = _entry(filename, content)
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{entry["oid"]}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if "lfs" in entry:  # the Hub names an LFS file by its sha256 and size in these headers
            headers["X-Linked-Etag"] = f'"{entry["lfs"]["oid"]}"'
            headers["X-Linked-Size"] = str(len(content))
        byte_range = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if byte_range and not head:
            start = int(byte_range[1])
            end = min(int(byte_range[2]) if byte_range[2] else len(content) - 1, len(content) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            return self._send(206, content[start : end + 1], headers)
        self._send(200, content, headers, head=head)


class HubServer:
    """[`FakeHub`] served on 127.0.0.1 (a free port) in a thread; `endpoint` is the value for `HF_ENDPOINT`."""

    def __init__(self, hub: FakeHub) -> None:
        handler = type("Handler", (_Handler,), {"hub": hub})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
