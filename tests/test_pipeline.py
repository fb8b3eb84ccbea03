"""pipeline("composed-video-retrieval"): saved with its code, loaded through trust_remote_code in
a process where the package cannot be imported, indexing real rendered videos."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import modeling_tfcovr as mt
from modeling_tfcovr.video_io import write_mp4

from .conftest import brightness_frames, randomize_aim_parameters


def _pass_through_combiner(model: mt.TFCoVRModel) -> None:
    """Makes the composed query equal the (normalised) query video: zero residual, gate at 0."""
    with torch.no_grad():
        model.combiner.output_layer.weight.zero_()
        model.combiner.output_layer.bias.zero_()
        model.combiner.dynamic_scalar[3].weight.zero_()
        model.combiner.dynamic_scalar[3].bias.fill_(-30.0)


@pytest.fixture
def gallery_dir(tmp_path):
    """A query video, an identical copy under another name (the planted target), and distractors."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "videos"
    folder.mkdir()
    query = rng.integers(0, 255, size=(12, 32, 32, 3), dtype=np.uint8)
    write_mp4(folder / "query.mp4", query)
    write_mp4(folder / "planted.mp4", query)
    for index in range(6):
        write_mp4(folder / f"distractor{index}.mp4", rng.integers(0, 255, size=(12, 32, 32, 3), dtype=np.uint8))
    write_mp4(folder / "ramp.mp4", brightness_frames(12, 32, 32))
    (folder / "broken.mp4").write_text("not a video")
    return folder


@pytest.fixture
def saved_model(tmp_path, tiny_config, tiny_processor):
    torch.manual_seed(0)
    model = mt.TFCoVRModel(tiny_config).eval()
    randomize_aim_parameters(model)
    _pass_through_combiner(model)
    mt.save_for_pipeline(model, tiny_processor, tmp_path / "model")
    return tmp_path / "model"


PIPELINE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["modeling_tfcovr"] = None
    try:
        import modeling_tfcovr  # noqa: F401
        raise SystemExit("the package must not be importable here")
    except ImportError:
        pass
    from pathlib import Path
    from transformers import pipeline
    folder, videos, index_dir = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    pipe = pipeline("composed-video-retrieval", model=folder, trust_remote_code=True)
    gallery = pipe.index(sorted(str(p) for p in videos.glob("*.mp4")), progress=False)
    answers = pipe(video=str(videos / "query.mp4"), text="one more rotation", gallery=gallery, top_k=3)
    gallery.save(index_dir)
    print(json.dumps({"pipeline": type(pipe).__module__, "answers": answers, "size": len(gallery),
                      "failures": [f["video_id"] for f in pipe.index_failures]}))
    """
)


def test_pipeline_from_saved_folder_without_the_package(saved_model, gallery_dir, tmp_path):
    config = json.loads((saved_model / "config.json").read_text())
    assert (
        config["custom_pipelines"]["composed-video-retrieval"]["impl"]
        == "pipeline_tfcovr.ComposedVideoRetrievalPipeline"
    )
    assert (saved_model / "pipeline_tfcovr.py").exists() and (saved_model / "processor_config.json").exists()
    result = subprocess.run(
        [sys.executable, "-c", PIPELINE_SCRIPT, str(saved_model), str(gallery_dir), str(tmp_path / "index")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["pipeline"].startswith("transformers_modules.")
    assert output["failures"] == ["broken"]  # skipped and reported, the rest indexed
    assert output["size"] == 9
    answers = output["answers"]
    assert [a["video_id"] for a in answers][0] == "planted"  # the planted target first
    assert "query" not in [a["video_id"] for a in answers]  # never the query itself
    assert answers[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert answers[0]["path"].endswith("planted.mp4")
    assert answers[0]["score"] > answers[1]["score"]

    # The saved index loads (memory-mapped) and answers precomputed queries the same way.
    index = mt.RetrievalIndex.load(tmp_path / "index")
    from transformers import pipeline

    pipe = pipeline("composed-video-retrieval", model=str(saved_model), trust_remote_code=True)
    query = pipe.processor(videos=[str(gallery_dir / "query.mp4")], text=["one more rotation"])
    with torch.no_grad():
        embeds = pipe.model.get_query_features(**query)
    by_embeds = pipe(query_embeds=embeds[0].numpy(), gallery=index, top_k=3, exclude_ids=["query"])
    assert [a["video_id"] for a in by_embeds] == [a["video_id"] for a in answers]
    batch = pipe(
        video=[str(gallery_dir / "query.mp4")] * 2, text=["one more rotation", "reverse it"], gallery=index, top_k=2
    )
    assert len(batch) == 2 and all(b[0]["video_id"] == "planted" for b in batch)


def test_pipeline_needs_a_gallery(saved_model):
    from transformers import pipeline

    pipe = pipeline("composed-video-retrieval", model=str(saved_model), trust_remote_code=True)
    with pytest.raises(ValueError, match="gallery"):
        pipe(video="x.mp4", text="one more rotation")


def test_index_from_a_video_dataset_and_from_an_embeddings_dataset_equals_indexing_paths(
    saved_model, gallery_dir, tmp_path
):
    import datasets
    from transformers import pipeline

    from modeling_tfcovr.data.embeddings import write_embeddings_parquet

    pipe = pipeline("composed-video-retrieval", model=str(saved_model), trust_remote_code=True)
    names = ["query", "planted", "distractor0", "distractor1", "ramp"]
    paths = [str(gallery_dir / f"{name}.mp4") for name in names]
    by_paths = pipe.index(paths, progress=False)

    table = datasets.Dataset.from_dict({"video_id": [f"clip-{n}" for n in names], "video": paths})
    by_dataset = pipe.index(table, progress=False)
    assert list(by_dataset.video_ids) == [f"clip-{n}" for n in names]  # ids from the dataset's video_id column
    np.testing.assert_allclose(by_dataset.embeddings, by_paths.embeddings, atol=1e-6)

    write_embeddings_parquet(tmp_path / "gallery.parquet", names, np.asarray(by_paths.embeddings))
    by_embeddings = pipe.index(str(tmp_path / "gallery.parquet"))
    assert list(by_embeddings.video_ids) == names
    np.testing.assert_allclose(by_embeddings.embeddings, by_paths.embeddings, atol=1e-6)
    query = {"video": paths[0], "text": "one more rotation", "top_k": 3}
    assert [a["video_id"] for a in pipe(**query, gallery=by_embeddings)] == [
        a["video_id"] for a in pipe(**query, gallery=by_paths)
    ]
    assert pipe(**query, gallery=by_embeddings)[0]["video_id"] == "planted"
