"""A web app for composed video retrieval (Gradio): choose or upload a query clip, type a modification, see the
top-k gallery videos with their scores and labels.

    from transformers import pipeline
    from modeling_tfcovr.app import SearchService, build_app

    pipe = pipeline("composed-video-retrieval", model="path/or/repo", trust_remote_code=True)  # or load_pipeline(...)
    service = SearchService(pipe, RetrievalIndex.load("gallery"), labels={"clip_1": "salto forward"})
    build_app(service).launch()

The page's events are also an API for `gradio_client`: `/search` (query id or uploaded file, text, top_k -> a list
of `{"rank", "video_id", "score", "label"}`), `/check_query` (validates an uploaded clip) and
`/index_videos` (replaces the gallery with uploaded videos). Gradio is an optional dependency: `pip install
'tfcovr[app]'`.
"""

from __future__ import annotations

import html
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DataFormatError, TFCoVRError
from .retrieval_index import RetrievalIndex
from .video_io import VIDEO_EXTENSIONS, resolve_relative_video_path

if TYPE_CHECKING:
    import gradio as gr

    from .pipeline_tfcovr import ComposedVideoRetrievalPipeline

__all__ = [
    "SearchService",
    "build_app",
    "load_pipeline",
    "read_video_list",
    "read_labels",
    "load_gallery",
    "MAX_RESULTS",
]

MAX_RESULTS = 12
"""Video slots on the page: the largest top-k the page offers."""


# ----------------------------------------------------------------------------------------------------------------------
# Gallery sources
# ----------------------------------------------------------------------------------------------------------------------


def _read_table(path: Path) -> list[dict]:
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    readers = {
        ".parquet": pq.read_table,
        ".csv": pa_csv.read_csv,
        ".jsonl": pa_json.read_json,
        ".json": pa_json.read_json,
    }
    if path.suffix.lower() not in readers:
        raise DataFormatError(f"{path}: expected a .parquet, .csv or .jsonl table")
    try:
        return readers[path.suffix.lower()](path).to_pylist()
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise DataFormatError(f"cannot read the table {str(path)!r} ({error})") from None


def read_video_list(
    source: str | os.PathLike, video_root: str | os.PathLike | None = None
) -> tuple[list[str], list[str], dict[str, str]]:
    """`(video_ids, paths, labels)` of a folder of videos (sorted, ids = file stems) or of a table.

    A table (`.parquet`, `.csv`, `.jsonl`) has a `video` (or `video_path`/`path`) column of paths relative to
    `video_root` (default: the table's folder), optionally `video_id` (default: the file stems) and `label`
    columns, as the clip tables of the project's datasets (`clips/test.parquet`, with `video_root` the dataset).
    """
    source = Path(source)
    if source.is_dir():
        paths = sorted(str(p) for p in source.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
        if not paths:
            raise DataFormatError(f"{source} holds no videos ({', '.join(VIDEO_EXTENSIONS)})")
        return [Path(p).stem for p in paths], paths, {}
    if not source.is_file():
        raise FileNotFoundError(f"no folder or table of videos at {str(source)!r}")
    rows = _read_table(source)
    if not rows:
        raise DataFormatError(f"{source} has no rows")
    column = next((c for c in ("video", "video_path", "path") if c in rows[0]), None)
    if column is None:
        raise DataFormatError(f"{source} has no video column (video, video_path or path) among {sorted(rows[0])}")
    root = Path(video_root) if video_root is not None else source.parent
    # Paths in a table are data: none may lead outside the video root.
    paths = [str(resolve_relative_video_path(root, row[column])) for row in rows]
    ids = [str(row["video_id"]) if row.get("video_id") is not None else Path(p).stem for row, p in zip(rows, paths)]
    labels = {video_id: str(row["label"]) for video_id, row in zip(ids, rows) if row.get("label") is not None}
    return ids, paths, labels


def read_labels(path: str | os.PathLike) -> dict[str, str]:
    """`{video_id: label}` from a table with `video_id` and `label` columns."""
    rows = _read_table(Path(path))
    if rows and not {"video_id", "label"} <= set(rows[0]):
        raise DataFormatError(f"{path}: a labels table needs the columns video_id and label, got {sorted(rows[0])}")
    return {str(row["video_id"]): str(row["label"]) for row in rows if row["label"] is not None}


def load_gallery(source: str | os.PathLike, revision: str | None = None) -> RetrievalIndex:
    """A gallery saved with `RetrievalIndex.save` (a folder), or a Hub dataset repo id."""
    if Path(source).is_dir():
        return RetrievalIndex.load(source)
    from_pretrained = getattr(RetrievalIndex, "from_pretrained", None)
    if from_pretrained is None or os.path.exists(source):
        raise FileNotFoundError(f"no saved gallery (a folder written by RetrievalIndex.save) at {str(source)!r}")
    return from_pretrained(os.fspath(source), revision=revision)


def load_pipeline(
    model: str | os.PathLike, revision: str | None = None, device: str | None = None
) -> ComposedVideoRetrievalPipeline:
    """The composed-video-retrieval pipeline of a model folder or Hub repo id, built from this package's classes: the
    code files saved with the model (what `trust_remote_code=True` would run) are not executed."""
    from .modeling_tfcovr import TFCoVRModel
    from .pipeline_tfcovr import TASK, ComposedVideoRetrievalPipeline
    from .processing_tfcovr import TFCoVRProcessor

    model = os.fspath(model)
    return ComposedVideoRetrievalPipeline(
        model=TFCoVRModel.from_pretrained(model, revision=revision).eval(),
        processor=TFCoVRProcessor.from_pretrained(model, revision=revision),
        task=TASK,
        device=device,
    )


# ----------------------------------------------------------------------------------------------------------------------
# The logic behind the page (no Gradio here)
# ----------------------------------------------------------------------------------------------------------------------


class SearchService:
    """The app's state and operations: a pipeline, the gallery it searches and the gallery's labels.

    One gallery is shared by every visitor; a lock serialises model calls and gallery replacement.
    """

    def __init__(
        self,
        pipe: ComposedVideoRetrievalPipeline,
        gallery: RetrievalIndex,
        labels: dict[str, str] | None = None,
        model_name: str = "",
    ):
        self.pipe = pipe
        self.model_name = model_name
        self._lock = threading.Lock()
        self._set_gallery(gallery, labels)

    def _set_gallery(self, gallery: RetrievalIndex, labels: dict[str, str] | None) -> None:
        self.gallery, self.labels = gallery, dict(labels or {})
        self._paths = dict(zip(gallery.video_ids, gallery.paths or [None] * len(gallery)))

    @property
    def query_ids(self) -> list[str]:
        """Gallery videos that can be chosen as a query (those with a path)."""
        return [video_id for video_id, path in self._paths.items() if path]

    def video_path(self, video_id: str) -> str | None:
        """The video file of a gallery entry, or `None`."""
        return self._paths.get(video_id)

    def path_of(self, video_id: str) -> str:
        """The video file of a gallery entry."""
        if video_id not in self._paths:
            raise DataFormatError(f"{video_id!r} is not a video of the gallery")
        path = self._paths[video_id]
        if not path:
            raise DataFormatError(f"the gallery has no video file for {video_id!r} (an embeddings-only gallery)")
        return path

    def check_video(self, path: str | os.PathLike, name: str | None = None) -> str:
        """Checks that `path` decodes (raises `TFCoVRError` naming `name`) and returns it."""
        name = name or Path(path).name
        try:
            # Decoded as a search decodes it: some files open as a video but have no frame to read.
            self.pipe.processor.video_processor(os.fspath(path), return_tensors="pt")
        except (TFCoVRError, OSError, ValueError, RuntimeError) as error:
            reason = getattr(error, "reason", str(error))
            raise TFCoVRError(f"{name!r} is not a video the app can read: {reason}") from None
        return os.fspath(path)

    def search(
        self, query_id: str | None, upload: str | os.PathLike | None, text: str | None, top_k: int = 5
    ) -> list[dict]:
        """Top-`top_k` gallery videos for a query clip (an uploaded file, else the gallery video `query_id`) and a
        modification text: `[{"rank", "video_id", "score", "label"}]`, best first, never the query's own
        video. Raises `TFCoVRError` with a message for the user on bad input."""
        if upload:
            video = self.check_video(upload)
            own_id = Path(upload).stem
        elif query_id:
            video, own_id = self.path_of(query_id), query_id
        else:
            raise TFCoVRError("choose a query clip from the gallery or upload one")
        if not isinstance(text, str) or not text.strip():
            raise TFCoVRError("type a modification: what should change in the query clip")
        top_k = int(top_k)
        if top_k < 1:
            raise TFCoVRError(f"the number of results must be at least 1, got {top_k}")
        with self._lock:
            # One extra result: the pipeline leaves out the query's file stem; a gallery id that is not the stem
            # is left out here.
            answers = self.pipe(video=video, text=text, gallery=self.gallery, top_k=min(top_k + 1, len(self.gallery)))
        answers = [a for a in answers if a["video_id"] != own_id][:top_k]
        return [
            {
                "rank": rank,
                "video_id": a["video_id"],
                "score": round(float(a["score"]), 6),
                "label": self.labels.get(a["video_id"]),
            }
            for rank, a in enumerate(answers, 1)
        ]

    def index(
        self,
        paths: Sequence[str],
        video_ids: Sequence[str] | None = None,
        labels: dict[str, str] | None = None,
        progress: bool = True,
        batch_size: int = 4,
    ) -> dict[str, Any]:
        """Embeds `paths` into a new gallery that replaces the current one; returns `{"videos", "failures"}`."""
        if not paths:
            raise TFCoVRError("no videos to index")
        with self._lock:
            gallery = self.pipe.index(list(paths), video_ids=video_ids, batch_size=batch_size, progress=progress)
            self._set_gallery(gallery, labels)
            failures = [{"video_id": f["video_id"], "error": f["error"]} for f in self.pipe.index_failures]
        return {"videos": len(gallery), "failures": failures}

    def describe(self) -> str:
        labelled = sum(video_id in self.labels for video_id in self.gallery.video_ids)
        model = f"model `{self.model_name}` · " if self.model_name else ""
        return f"{model}gallery of **{len(self.gallery)}** videos ({labelled} with labels)"


# ----------------------------------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------------------------------

_CSS = """
#results-table table { border-collapse: collapse; width: 100%; }
#results-table td, #results-table th { padding: 2px 10px; text-align: left; }
.result-video video { max-height: 170px; }
"""


def results_html(results: list[dict]) -> str:
    """The results as an HTML table (`#results-table`), one row per result with its id in `td.video-id`."""
    if not results:
        return ""
    rows = "".join(
        f'<tr class="result" data-rank="{r["rank"]}"><td>{r["rank"]}</td>'
        f'<td class="video-id">{html.escape(r["video_id"])}</td><td class="score">{r["score"]:.4f}</td>'
        f'<td class="label">{html.escape(r["label"] or "")}</td></tr>'
        for r in results
    )
    head = "<thead><tr><th>#</th><th>video</th><th>score</th><th>label</th></tr></thead>"
    return f"<table>{head}<tbody>{rows}</tbody></table>"


def _video_caption(result: dict) -> str:
    label = f" · {result['label']}" if result["label"] else ""
    return f"#{result['rank']} {result['video_id']} · {result['score']:.3f}{label}"


def build_app(service: SearchService, max_results: int = MAX_RESULTS, default_top_k: int = 5) -> gr.Blocks:
    """The Gradio page for `service` (launch it with `.launch(allowed_paths=...)` so that the gallery's videos can
    be served)."""
    try:
        import gradio as gr
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("the web app needs Gradio: pip install 'tfcovr[app]'") from error

    def _fail(error: Exception) -> gr.Error:
        return gr.Error(str(error), duration=20)

    def search(query_id: str | None, upload: str | None, text: str, top_k: float) -> list[dict]:
        try:
            return service.search(query_id, upload, text, int(top_k))
        except TFCoVRError as error:
            raise _fail(error) from None

    def check_query(upload: str | None) -> tuple[str | None, Any, str]:
        if not upload:
            return None, gr.update(), ""
        try:
            video = service.check_video(upload)
        except TFCoVRError as error:
            raise _fail(error) from None
        return video, gr.update(value=None), f"Query: uploaded `{Path(upload).name}`"

    def choose_query(query_id: str | None) -> tuple[str | None, Any, str]:
        if not query_id:
            return None, gr.update(), ""
        try:
            return service.path_of(query_id), gr.update(value=None), f"Query: gallery video `{query_id}`"
        except TFCoVRError as error:
            raise _fail(error) from None

    def show_results(results: list[dict]) -> list[Any]:
        results = results or []
        paths = [service.video_path(r["video_id"]) for r in results[:max_results]]
        slots = [gr.update(value=p, label=_video_caption(r), visible=bool(p)) for r, p in zip(results, paths)]
        slots += [gr.update(value=None, visible=False)] * (max_results - len(slots))
        status = f"{len(results)} results, best first." if results else "No results."
        return [results_html(results), status, *slots]

    def clear_results() -> list[Any]:
        return [
            "",
            "The search failed: see the message on the right of the page.",
            *[gr.update(value=None, visible=False)] * max_results,
        ]

    # `progress` is read by Gradio from the signature: it shows the pipeline's tqdm bar in the page.
    def index_videos(files: list[str] | None, progress=gr.Progress(track_tqdm=True)) -> tuple[dict, Any, str]:
        try:
            if not files:
                raise TFCoVRError("upload the videos to index first")
            summary = service.index([os.fspath(f) for f in files], progress=True)
        except TFCoVRError as error:
            raise _fail(error) from None
        failed = "".join(f"\n- `{f['video_id']}`: {f['error']}" for f in summary["failures"])
        note = f"Indexed {summary['videos']} videos." + (
            f" Skipped {len(summary['failures'])}:{failed}" if failed else ""
        )
        return summary, gr.update(choices=service.query_ids, value=None), f"{service.describe()}\n\n{note}"

    with gr.Blocks(title="TF-CoVR search", analytics_enabled=False) as app:
        gr.Markdown("## TF-CoVR: composed video retrieval\nChoose a query clip, say what should change, and search.")
        info = gr.Markdown(service.describe(), elem_id="gallery-info")
        with gr.Row():
            with gr.Column(scale=1):
                query_id = gr.Dropdown(
                    choices=service.query_ids,
                    value=None,
                    label="Query clip from the gallery",
                    elem_id="query-id",
                    filterable=True,
                )
                upload = gr.File(
                    label="…or upload a query clip",
                    file_count="single",
                    type="filepath",
                    elem_id="query-upload",
                    height=140,
                )
                preview = gr.Video(label="Query", interactive=False, elem_id="query-video", height=200, loop=True)
            with gr.Column(scale=2):
                text = gr.Textbox(
                    label="Modification",
                    placeholder="e.g. the same but with one more rotation",
                    elem_id="modification",
                    lines=1,
                )
                with gr.Row():
                    top_k = gr.Slider(
                        1, max_results, value=min(default_top_k, max_results), step=1, label="Results", elem_id="top-k"
                    )
                    button = gr.Button("Search", variant="primary", elem_id="search-button")
                status = gr.Markdown("", elem_id="status")
                table = gr.HTML("", elem_id="results-table")
                with gr.Accordion("Results as JSON", open=False):
                    results = gr.JSON(elem_id="results-json")
        videos = []
        for start in range(0, max_results, 4):
            with gr.Row(equal_height=False):
                for _ in range(start, min(start + 4, max_results)):
                    # The columns stay when their video is hidden, so that every row keeps four equal slots.
                    with gr.Column(min_width=160):
                        videos.append(
                            gr.Video(
                                visible=False, interactive=False, height=170, loop=True, elem_classes=["result-video"]
                            )
                        )
        with gr.Accordion("Index other videos (replaces the gallery)", open=False):
            files = gr.File(label="Videos", file_count="multiple", type="filepath", elem_id="index-files")
            index_button = gr.Button("Index", elem_id="index-button")
            index_summary = gr.JSON(visible=False)

        # No progress overlay on the query inputs: it would stay on them as an error badge after a bad upload.
        query_id.input(
            choose_query, query_id, [preview, upload, status], api_visibility="private", show_progress="hidden"
        )
        checked = upload.upload(
            check_query, upload, [preview, query_id, status], api_name="check_query", show_progress="hidden"
        )
        checked.failure(lambda: None, None, upload, api_visibility="private")  # drop the file that is not a video
        searched = gr.on(
            [button.click, text.submit], search, [query_id, upload, text, top_k], results, api_name="search"
        )
        searched.success(show_results, results, [table, status, *videos], api_visibility="private")
        searched.failure(clear_results, None, [table, status, *videos], api_visibility="private")
        index_button.click(index_videos, files, [index_summary, query_id, info], api_name="index_videos")
    app.css_for_launch = _CSS  # launch() takes the CSS in Gradio 6
    return app


def allowed_video_dirs(gallery: RetrievalIndex) -> list[str]:
    """The folders of the gallery's videos, for `launch(allowed_paths=...)`."""
    return sorted({str(Path(p).resolve().parent) for p in (gallery.paths or ()) if p})


def launch(
    service: SearchService,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    block: bool = True,
    **kwargs: Any,
) -> gr.Blocks:
    """Builds the page and serves it on `host:port` (Gradio serves only the gallery's video folders)."""
    import gradio as gr

    app = build_app(service, **kwargs)
    app.queue()
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=not block,
        quiet=True,
        allowed_paths=allowed_video_dirs(service.gallery),
        css=app.css_for_launch,
        theme=gr.themes.Default(
            font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
        ),
    )
    return app
