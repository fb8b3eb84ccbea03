"""Every entry point that gets a model, processor, pipeline, dataset, metric or gallery, loaded by Hub repository id.

A local HTTP server on 127.0.0.1 (`tests/hub_server.py`) serves the Hub's download endpoints for repositories built
here, each with two branches whose files differ (`main` and `v1`). A first subprocess, with `HF_ENDPOINT` pointing at
the server and a fresh `HF_HOME`, loads everything by repository id: `huggingface_hub` downloads into the cache
exactly as it does from the Hub (blobs, snapshots, refs). The server is then shut down and a second subprocess, with
`HF_HUB_OFFLINE=1`, loads everything again from that cache alone. Both must give the values of the `v1` files,
computed here from the folders that were committed; the remote-code loads run where `modeling_tfcovr` cannot be
imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import modeling_tfcovr as mt
from modeling_tfcovr.data import SyntheticConfig, build_synthetic_benchmark
from modeling_tfcovr.model_card import write_model_card
from modeling_tfcovr.video_io import write_mp4

from .conftest import TINY_TEXT_WORDS, TINY_VISION, randomize_aim_parameters, tiny_text_config
from .hub_server import FakeHub, HubServer

ROOT = Path(__file__).resolve().parents[1]
MODEL, STAGE1, TEXT = "tfcovr-test/tfcovr-tiny", "tfcovr-test/aim-stage1", "tfcovr-test/clip-text"
GYM, GALLERY, METRIC = "tfcovr-test/synthetic-gym", "tfcovr-test/gallery", "tfcovr-test/tfcovr_map"
STAGE1_VISION = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=1,
    num_attention_heads=2,
    image_size=32,
    patch_size=16,
    num_frames=2,
)


def fingerprint(module: torch.nn.Module) -> float:
    """A number that changes with any weight: the float64 sum of every tensor's values times its position."""
    return float(
        sum((index + 1) * value.double().sum() for index, (_, value) in enumerate(sorted(module.state_dict().items())))
    )


# The loads, run in a subprocess; the same script online (filling the cache) and offline (from it alone).
LOADS = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, torch
    spec = json.loads(sys.argv[1])
    rev, work = spec["revision"], Path(spec["work"])

    def fingerprint(module):
        return float(sum((i + 1) * v.double().sum() for i, (_, v) in enumerate(sorted(module.state_dict().items()))))

    import modeling_tfcovr as mt
    from modeling_tfcovr.commands import evaluate as evaluate_cmd, extract_embeddings as extract_cmd
    from modeling_tfcovr.data.embeddings import read_embeddings
    out = {}
    # models and processor
    out["from_pretrained"] = fingerprint(mt.TFCoVRModel.from_pretrained(spec["model"], revision=rev))
    out["processor_frames"] = mt.TFCoVRProcessor.from_pretrained(spec["model"], revision=rev).video_processor.num_frames
    out["load_vision_encoder"] = fingerprint(mt.load_vision_encoder(spec["stage1"], revision=rev))
    config = mt.TFCoVRConfig(embed_dim=64, combiner_projection_dim=16, combiner_hidden_dim=16)
    assembled = mt.TFCoVRModel.from_pretrained_encoders(config, vision_path=spec["stage1"], text_path=spec["text"],
                                                        vision_revision=rev, text_revision="main")
    out["from_pretrained_encoders"] = [fingerprint(assembled.vision_model), fingerprint(assembled.text_model)]
    # the training scripts' model and data paths, parsed from their command-line flags
    from transformers import HfArgumentParser
    from modeling_tfcovr.training.stage1 import (ClassifierDataArguments, ClassifierModelArguments,
                                                 ClassifierTrainingArguments, build_classifier, load_clip_splits)
    from modeling_tfcovr.training.stage2 import (RetrievalDataArguments, RetrievalModelArguments,
                                                 RetrievalTrainingArguments, build_retrieval_model)
    model_args, data_args, _ = HfArgumentParser((RetrievalModelArguments, RetrievalDataArguments,
                                                 RetrievalTrainingArguments)).parse_args_into_dataclasses([
        "--triplets", spec["gym"], "--triplets_revision", rev, "--embeddings", "unused.parquet",
        "--vision_model_path", spec["stage1"], "--vision_model_revision", rev, "--text_model_path", spec["text"],
        "--config_overrides", "combiner_projection_dim=16,combiner_hidden_dim=16", "--output_dir", str(work / "s2")])
    stage2_model, stage2_processor = build_retrieval_model(model_args, [])
    out["train_retrieval_vision"] = fingerprint(stage2_model.vision_model)
    out["train_retrieval_video_frames"] = stage2_processor.video_processor.num_frames
    model_args, data_args, _ = HfArgumentParser((ClassifierModelArguments, ClassifierDataArguments,
                                                 ClassifierTrainingArguments)).parse_args_into_dataclasses([
        "--model_name_or_path", spec["stage1"], "--model_revision", rev, "--dataset_dir", spec["gym"],
        "--dataset_revision", rev, "--output_dir", str(work / "s1")])
    train_rows, eval_rows, video_root = load_clip_splits(data_args)
    out["train_classifier_clips"] = [row["video_id"] for row in train_rows]
    out["train_classifier_videos_exist"] = all((video_root / row["video"]).is_file() for row in train_rows)
    classifier = build_classifier(model_args, {0: "a", 1: "b", 2: "c"})
    out["train_classifier_vision"] = fingerprint(classifier.vision_model)
    # datasets
    from datasets import load_dataset

    def columns(dataset_dict, *names):
        return {split: sum((list(dataset_dict[split][name]) for name in names), []) for split in sorted(dataset_dict)}

    triplets = mt.load_hub_dataset(spec["gym"], revision=rev)
    out["load_hub_dataset_triplets"] = columns(triplets, "query_id", "modification")
    clips = mt.load_hub_dataset(spec["gym"], "clips", revision=rev)
    out["load_hub_dataset_clips"] = columns(clips, "video_id", "label")
    if spec["online"]:  # offline, datasets' own fallback takes its newest prepared copy, whatever the revision
        out["load_dataset_triplets"] = columns(load_dataset(spec["gym"], revision=rev), "query_id", "modification")
        out["load_dataset_clips"] = columns(load_dataset(spec["gym"], "clips", revision=rev), "video_id", "label")
    from modeling_tfcovr.retrieval_evaluation import load_triplet_split
    out["load_triplet_split"] = load_triplet_split(spec["gym"], "test", revision=rev).modifications
    # metric
    metric = mt.load_metric(spec["metric"], revision=rev)
    out["metric"] = metric.compute(predictions=[["b", "x", "a"]], references=[["a", "b"]])
    # gallery
    gallery = mt.RetrievalIndex.from_pretrained(spec["gallery"], revision=rev)
    out["gallery"] = {"ids": list(gallery.video_ids), "paths": list(gallery.paths or []),
                      "sum": float(np.asarray(gallery.embeddings, dtype=np.float64).sum())}
    # commands with --revision
    extract_cmd.main(["--model", spec["stage1"], "--revision", rev, "--videos", spec["videos"],
                      "--output", str(work / "emb"), "--num-workers", "0", "--device", "cpu"])
    ids, embeds = read_embeddings(work / "emb")
    out["extract_embeddings"] = {"ids": ids, "sum": float(embeds.astype(np.float64).sum())}
    from huggingface_hub import snapshot_download
    snapshot = Path(snapshot_download(spec["gym"], repo_type="dataset", revision=rev))
    evaluate_cmd.main(["--model", spec["model"], "--revision", rev, "--triplets", spec["gym"], "--triplets-revision",
                       rev, "--split", "test", "--video-root", str(snapshot / "videos"), "--output-dir",
                       str(work / "eval"), "--k", "1,5"])
    out["evaluate"] = json.loads((work / "eval" / "metrics.json").read_text())["results"]
    if spec.get("official_checkpoint"):
        from modeling_tfcovr.commands import convert_tfcovr_checkpoint as convert_cmd
        arguments = [spec["official_checkpoint"], "--output", str(work / "converted"), "--vision-checkpoint",
                     spec["stage1"], "--vision-revision", rev, "--no-processor"]
        assert convert_cmd.main(arguments) == 0
        converted = mt.TFCoVRModel.from_pretrained(work / "converted")
        out["convert_vision_checkpoint"] = fingerprint(converted.vision_model)
    print("RESULT " + json.dumps(out))
    """
)

# The remote-code loads, where the package cannot be imported.
REMOTE = textwrap.dedent(
    """
    import json, sys
    sys.modules["modeling_tfcovr"] = None
    try:
        import modeling_tfcovr  # noqa: F401
        raise SystemExit("the package must not be importable here")
    except ImportError:
        pass
    import torch
    from transformers import AutoModel, AutoModelForVideoClassification, AutoProcessor, pipeline
    spec = json.loads(sys.argv[1])
    rev = spec["revision"]

    def fingerprint(module):
        return float(sum((i + 1) * v.double().sum() for i, (_, v) in enumerate(sorted(module.state_dict().items()))))

    model = AutoModel.from_pretrained(spec["model"], revision=rev, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(spec["model"], revision=rev, trust_remote_code=True)
    classifier = AutoModelForVideoClassification.from_pretrained(spec["stage1"], revision=rev, trust_remote_code=True)
    pipe = pipeline("composed-video-retrieval", model=spec["model"], revision=rev, trust_remote_code=True)
    gallery = pipe.index(spec["gallery_videos"], progress=False)
    answers = pipe(video=spec["query"], text="one more rotation", gallery=gallery, top_k=3)
    print("RESULT " + json.dumps({
        "modules": sorted({type(model).__module__, type(processor).__module__, type(pipe).__module__}),
        "automodel": fingerprint(model), "automodel_classifier": fingerprint(classifier),
        "input_ids": processor(text=["Show it with 2 rotations"])["input_ids"].tolist(),
        "pipeline_model": fingerprint(pipe.model), "pipeline": [(a["video_id"], round(a["score"], 5)) for a in answers],
    }))
    """
)


def _run(script: str, spec: dict, env: dict, cwd: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(spec)], capture_output=True, text=True, cwd=cwd, env=env, timeout=900
    )
    assert result.returncode == 0, result.stderr[-6000:]
    return json.loads(next(line for line in result.stdout.splitlines()[::-1] if line.startswith("RESULT "))[7:])


def _tiny_model(seed: int) -> tuple[mt.TFCoVRModel, mt.TFCoVRProcessor]:
    tokenizer = mt.build_word_level_tokenizer(TINY_TEXT_WORDS)
    config = mt.TFCoVRConfig(
        vision_config=TINY_VISION,
        text_config=tiny_text_config(len(tokenizer)),
        embed_dim=32,
        combiner_projection_dim=48,
        combiner_hidden_dim=64,
    )
    torch.manual_seed(seed)
    model = mt.TFCoVRModel(config).eval()
    randomize_aim_parameters(model, seed=seed)
    video_processor = mt.TFCoVRVideoProcessor(
        num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    return model, mt.TFCoVRProcessor(video_processor, tokenizer)


def _official_checkpoint(folder: Path) -> Path | None:
    """An official stage-2 checkpoint (tiny, random; OpenAI's CLIP RN text tower), or None without the clip package."""
    import importlib
    import types

    from .test_convert import official_model_state, tiny_openai_clip

    try:
        clip = importlib.import_module("clip")
    except ModuleNotFoundError as error:  # its clip.py imports pkg_resources only for `packaging` (see test_convert)
        if error.name != "pkg_resources":
            return None
        import packaging.version

        sys.modules["pkg_resources"] = types.SimpleNamespace(packaging=packaging)
        try:
            clip = importlib.import_module("clip")
        finally:
            sys.modules.pop("pkg_resources", None)
    importlib.import_module("clip.model")
    path = folder / "best_val.ckpt"
    torch.save({"epoch": 1, "model": official_model_state(tiny_openai_clip(clip, vit=False))}, path)
    return path


@pytest.fixture(scope="module")
def hub_world(tmp_path_factory):
    """The repositories (two branches each) on a FakeHub, plus the values every load must give for each branch."""
    root = tmp_path_factory.mktemp("hub_world")
    hub, expected = FakeHub(), {"main": {}, "v1": {}}
    videos = root / "videos"
    videos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("query", "a", "b", "c"):
        write_mp4(videos / f"{name}.mp4", rng.integers(0, 255, size=(8, 32, 32, 3), dtype=np.uint8))
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    tokenizer = mt.build_word_level_tokenizer(TINY_TEXT_WORDS)
    torch.manual_seed(5)
    text_encoder = CLIPTextModelWithProjection(
        CLIPTextConfig(**{k: v for k, v in tiny_text_config(len(tokenizer)).items() if k != "model_type"})
    )
    text_encoder.save_pretrained(root / "text")
    tokenizer.save_pretrained(root / "text")
    hub.commit_folder("model", TEXT, root / "text")
    text_fingerprint = fingerprint(text_encoder)

    for seed, branch in ((0, "main"), (1, "v1")):
        values = expected[branch]
        model, processor = _tiny_model(seed)
        mt.save_for_pipeline(model, processor, root / branch / "model")
        write_model_card(root / branch / "model", "retrieval", "tiny test data", model_id=MODEL)
        hub.commit_folder("model", MODEL, root / branch / "model", branch)
        values["model"] = fingerprint(model)

        torch.manual_seed(10 + seed)
        stage1 = mt.TFCoVRForVideoClassification(
            mt.TFCoVRConfig(vision_config=STAGE1_VISION, embed_dim=64, id2label={0: "x", 1: "y", 2: "z"})
        )
        randomize_aim_parameters(stage1, seed=10 + seed)
        stage1.save_pretrained(root / branch / "stage1")
        mt.TFCoVRVideoProcessor(
            num_frames=2, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ).save_pretrained(root / branch / "stage1")
        hub.commit_folder("model", STAGE1, root / branch / "stage1", branch)
        values["stage1_vision"] = fingerprint(stage1.vision_model)
        values["stage1_classifier"] = fingerprint(stage1)
        with torch.no_grad():
            pixels = mt.TFCoVRVideoProcessor(
                num_frames=2, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
            )([str(videos / f"{n}.mp4") for n in ("a", "b", "c", "query")])["pixel_values_videos"]
            values["extract_sum"] = float(stage1.vision_model(pixels).pooler_output.double().sum())

        small = SyntheticConfig(
            apparatus=("floor", "beam"),
            rotations=(1.0, 2.0),
            elements=("turn",),
            directions=("cw",),
            train_clips_per_label=1,
            val_clips_per_label=1,
            test_clips_per_label=2,
        )
        build_synthetic_benchmark(root / branch / "gym", seed=seed, config=small)
        hub.commit_folder("dataset", GYM, root / branch / "gym", branch)
        import pyarrow.parquet as pq

        values["triplets"] = {
            split: pq.read_table(root / branch / "gym" / "data" / f"{split}.parquet").to_pydict()
            for split in ("test", "train", "val")
        }
        values["clips"] = {
            split: pq.read_table(root / branch / "gym" / "clips" / f"{split}.parquet").to_pydict()
            for split in ("test", "train", "val")
        }

        gallery = mt.RetrievalIndex(
            [f"{branch}-{i}" for i in range(5)], rng.normal(size=(5, 8)), paths=[f"{branch}/{i}.mp4" for i in range(5)]
        )
        gallery.save_pretrained(root / branch / "gallery", repo_id=GALLERY)
        hub.commit_folder("dataset", GALLERY, root / branch / "gallery", branch)
        values["gallery"] = {
            "ids": list(gallery.video_ids),
            "paths": list(gallery.paths),
            "sum": float(np.asarray(gallery.embeddings, dtype=np.float64).sum()),
        }

        metric_files = {p.name: p.read_bytes() for p in Path(mt.METRIC_PATH).iterdir() if p.is_file()}
        if branch == "main":  # another default K on main: the K values computed tell which revision was loaded
            script = metric_files["tfcovr_map.py"].decode()
            assert "DEFAULT_K_VALUES: tuple[int, ...] = (5, 10, 25, 50)" in script
            metric_files["tfcovr_map.py"] = script.replace("= (5, 10, 25, 50)", "= (1, 2)").encode()
        hub.commit("space", METRIC, metric_files, branch)
    official = _official_checkpoint(root)
    return {
        "hub": hub,
        "expected": expected,
        "root": root,
        "videos": videos,
        "text_fingerprint": text_fingerprint,
        "official_checkpoint": official,
    }


def _environment(home: Path, endpoint: str | None, importable: bool = True) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        HF_HOME=str(home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_DATASETS_CACHE=str(home / "datasets"),
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    env["PYTHONPATH"] = str(ROOT) if importable else ""
    if endpoint is None:
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")  # nothing listens
    else:
        env["HF_ENDPOINT"] = endpoint
    return env


@pytest.mark.slow
def test_every_entry_point_loads_by_repo_id_online_then_offline_at_a_revision(hub_world, tmp_path):
    hub, expected, videos = hub_world["hub"], hub_world["expected"], hub_world["videos"]
    import importlib.util

    # the converter's --vision-checkpoint is exercised wherever OpenAI's clip package (a test extra) is installed
    assert hub_world["official_checkpoint"] is not None or importlib.util.find_spec("clip") is None
    spec = {
        "model": MODEL,
        "stage1": STAGE1,
        "text": TEXT,
        "gym": GYM,
        "gallery": GALLERY,
        "metric": METRIC,
        "revision": "v1",
        "videos": str(videos),
        "work": str(tmp_path / "work-online"),
        "online": True,
        "official_checkpoint": str(hub_world["official_checkpoint"] or ""),
    }
    home = tmp_path / "hf_home"
    with HubServer(hub) as server:
        online = _run(LOADS, spec, _environment(home, server.endpoint), tmp_path)
        # main too, so that the cache holds both branches and offline must pick the right one
        main = _run(
            LOADS,
            {**spec, "revision": "main", "work": str(tmp_path / "work-main")},
            _environment(home, server.endpoint),
            tmp_path,
        )
    served = "\n".join(hub.requests)
    assert "/resolve/v1/" in served and "/revision/v1" in served, served[-3000:]
    # the cache is the Hub's own layout: blobs, snapshots/<commit>, refs/<branch> holding the commit
    for repo_type, repo_id in (("models", MODEL), ("datasets", GYM), ("datasets", GALLERY), ("spaces", METRIC)):
        folder = home / "hub" / f"{repo_type}--{repo_id.replace('/', '--')}"
        commit = hub.repos[(repo_type[:-1], repo_id)].refs["v1"]
        assert (folder / "refs" / "v1").read_text() == commit
        assert (folder / "snapshots" / commit).is_dir() and any((folder / "blobs").iterdir())
    offline = _run(
        LOADS, {**spec, "work": str(tmp_path / "work-offline"), "online": False}, _environment(home, None), tmp_path
    )

    for branch, result in (("v1", online), ("v1", offline), ("main", main)):
        values = expected[branch]
        assert result["from_pretrained"] == pytest.approx(values["model"], rel=1e-9)
        assert result["processor_frames"] == 4
        assert result["load_vision_encoder"] == pytest.approx(values["stage1_vision"], rel=1e-9)
        assert result["from_pretrained_encoders"][0] == pytest.approx(values["stage1_vision"], rel=1e-9)
        assert result["from_pretrained_encoders"][1] == pytest.approx(hub_world["text_fingerprint"], rel=1e-9)
        assert result["train_retrieval_vision"] == pytest.approx(values["stage1_vision"], rel=1e-9)
        assert result["train_retrieval_video_frames"] == 2  # the stage-1 repository's video processor
        assert result["train_classifier_vision"] == pytest.approx(values["stage1_vision"], rel=1e-9)
        assert result["train_classifier_clips"] == values["clips"]["train"]["video_id"]
        assert result["train_classifier_videos_exist"] is True
        triplets = {s: t["query_id"] + t["modification"] for s, t in values["triplets"].items()}
        clips = {s: t["video_id"] + t["label"] for s, t in values["clips"].items()}
        assert result["load_hub_dataset_triplets"] == triplets and result["load_hub_dataset_clips"] == clips
        if result is not offline:
            assert result["load_dataset_triplets"] == triplets and result["load_dataset_clips"] == clips
        assert result["load_triplet_split"] == values["triplets"]["test"]["modification"]
        assert (
            result["gallery"]["ids"] == values["gallery"]["ids"]
            and result["gallery"]["paths"] == values["gallery"]["paths"]
        )
        assert result["gallery"]["sum"] == pytest.approx(values["gallery"]["sum"], rel=1e-6)
        assert result["extract_embeddings"]["ids"] == ["a", "b", "c", "query"]
        assert result["extract_embeddings"]["sum"] == pytest.approx(values["extract_sum"], rel=1e-4)
        assert set(result["evaluate"]["tfcovr"]) >= {"map@1", "map@5"}
        if hub_world["official_checkpoint"]:
            assert result["convert_vision_checkpoint"] == pytest.approx(values["stage1_vision"], rel=1e-9)
    # the metric module of each branch: v1 computes the paper's K values, main the (1, 2) planted on it
    assert set(online["metric"]) == set(offline["metric"]) == {f"map@{k}" for k in (5, 10, 25, 50)}
    assert set(main["metric"]) == {"map@1", "map@2"}
    # the two branches differ, so equal values above mean the right revision was loaded
    assert expected["v1"]["model"] != pytest.approx(expected["main"]["model"])
    assert expected["v1"]["triplets"] != expected["main"]["triplets"]
    assert offline["evaluate"] == online["evaluate"]


@pytest.mark.slow
def test_remote_code_loads_by_repo_id_without_the_package_online_then_offline(hub_world, tmp_path):
    hub, expected, videos = hub_world["hub"], hub_world["expected"], hub_world["videos"]
    spec = {
        "model": MODEL,
        "stage1": STAGE1,
        "revision": "v1",
        "query": str(videos / "query.mp4"),
        "gallery_videos": [str(videos / f"{n}.mp4") for n in ("a", "b", "c", "query")],
    }
    home = tmp_path / "hf_home"
    with HubServer(hub) as server:
        online = _run(REMOTE, spec, _environment(home, server.endpoint, importable=False), tmp_path)
    offline = _run(REMOTE, spec, _environment(home, None, importable=False), tmp_path)

    model, processor = _tiny_model(1)  # what v1 holds
    pipe_answers = mt.ComposedVideoRetrievalPipeline(model=model, processor=processor)
    gallery = pipe_answers.index(spec["gallery_videos"], progress=False)
    answers = pipe_answers(video=spec["query"], text="one more rotation", gallery=gallery, top_k=3)
    for result in (online, offline):
        assert all(
            module.startswith("transformers_modules.") or module.startswith("transformers.")
            for module in result["modules"]
        ), result["modules"]
        assert any(module.startswith("transformers_modules.") for module in result["modules"])
        assert result["automodel"] == pytest.approx(expected["v1"]["model"], rel=1e-9)
        assert result["pipeline_model"] == pytest.approx(expected["v1"]["model"], rel=1e-9)
        assert result["automodel_classifier"] == pytest.approx(expected["v1"]["stage1_classifier"], rel=1e-9)
        assert result["input_ids"] == processor(text=["Show it with 2 rotations"])["input_ids"].tolist()
        assert [video_id for video_id, _ in result["pipeline"]] == [a["video_id"] for a in answers]
        assert [score for _, score in result["pipeline"]] == pytest.approx([a["score"] for a in answers], abs=1e-4)
        assert "query" not in [video_id for video_id, _ in result["pipeline"]]


def test_a_local_path_never_goes_to_the_hub_and_a_bad_name_says_what_it_is(tmp_path, monkeypatch):
    from modeling_tfcovr.hub import resolve_folder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_folder(tmp_path) == tmp_path
    with pytest.raises(FileNotFoundError, match="neither an existing file or folder nor a Hub repository id"):
        resolve_folder(str(tmp_path / "missing" / "deeper" / "folder"))
    with pytest.raises(mt.TFCoVRError, match="cannot get the dataset repository 'nobody/nothing' at revision 'v9'"):
        resolve_folder("nobody/nothing", revision="v9", repo_type="dataset")
