"""The web app: search a gallery of videos with a query clip and a modification text, in the browser.

    python scripts/app.py --model runs/demo/tfcovr-synthetic --gallery my_gallery/
    python scripts/app.py --model runs/demo/tfcovr-synthetic --videos runs/demo/data/clips/test.parquet \\
        --video-root runs/demo/data
    python scripts/app.py --model path/or/repo --videos folder_of_videos/ --port 7860

`--gallery` loads a gallery saved with `RetrievalIndex.save` (or a Hub dataset repo id); `--videos` indexes a
folder of videos or a clip table (with a progress bar) when the app starts. Needs `pip install 'tfcovr[app]'`.
"""

from __future__ import annotations

import sys

from . import command_parser, path_or_repo_id


def main(argv: list[str] | None = None) -> int:
    parser = command_parser(__doc__)
    parser.add_argument(
        "--model", required=True, type=path_or_repo_id, help="a model folder saved for the pipeline, or a Hub repo id"
    )
    parser.add_argument("--revision", default=None, help="the model's revision (a branch, tag or commit on the Hub)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gallery", help="a saved gallery (folder of RetrievalIndex.save) or a Hub dataset repo id")
    source.add_argument("--videos", help="a folder of videos, or a clip table (.parquet/.csv/.jsonl) to index")
    parser.add_argument(
        "--video-root",
        default=None,
        help="folder the table's video paths are relative to (default: the table's folder)",
    )
    parser.add_argument(
        "--labels", default=None, help="a table with video_id and label columns (labels shown with the results)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0 for the network)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--device", default=None, help="torch device of the model (default: CPU)")
    parser.add_argument("--top-k", type=int, default=5, help="results shown by default")
    args = parser.parse_args(argv)

    from transformers.utils import logging as hf_logging

    from ..app import SearchService, launch, load_gallery, load_pipeline, read_labels, read_video_list

    hf_logging.set_verbosity_error()
    # This package's code, not the code files saved with the model: nothing downloaded is executed.
    pipe = load_pipeline(args.model, revision=args.revision, device=args.device)
    labels = {}
    if args.gallery:
        gallery = load_gallery(args.gallery, revision=args.gallery_revision)
    else:
        ids, paths, labels = read_video_list(args.videos, args.video_root)
        print(f"indexing {len(paths)} videos from {args.videos}", flush=True)
        gallery = pipe.index(paths, video_ids=ids, progress=True)
        for failure in pipe.index_failures:
            print(f"skipped {failure['video_id']}: {failure['error']}", file=sys.stderr)
    if args.labels:
        labels.update(read_labels(args.labels))
    service = SearchService(pipe, gallery, labels, model_name=args.model)
    print(f"TF-CoVR app on http://{args.host}:{args.port} ({len(gallery)} videos in the gallery)", flush=True)
    launch(service, host=args.host, port=args.port, default_top_k=args.top_k)
    return 0
