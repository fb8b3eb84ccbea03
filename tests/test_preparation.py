"""From FineGym raw videos and FineDiving frame folders (fixtures in the official formats) to TF-CoVR clips,
a 306-label clips dataset, and one epoch of stage 1 on it."""

from __future__ import annotations

import json
import math
import os
import pickle
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from modeling_tfcovr.commands import load_command
from modeling_tfcovr.data.label_sets import TFCOVR_STAGE1_LABELS, id2label_of
from modeling_tfcovr.errors import DataFormatError, UntrustedFileError
from modeling_tfcovr.preparation import prepare_finediving, prepare_finegym
from modeling_tfcovr.safe_pickle import load_data_pickle, loads_data_pickle
from modeling_tfcovr.video_io import read_frames, write_mp4

BLOCK, COLUMNS, BITS = 16, 4, 12  # 12 black/white 16x16 blocks on a 64x48 frame: numbers up to 4095


def numbered_frame(number: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A frame that shows `number` in binary as big black/white blocks (robust to H.264 and JPEG)."""
    frame = np.full((height, width, 3), 40, np.uint8)
    for bit in range(BITS):
        row, column = divmod(bit, COLUMNS)
        frame[row * BLOCK : (row + 1) * BLOCK, column * BLOCK : (column + 1) * BLOCK] = (
            255 if (number >> bit) & 1 else 0
        )
    return frame


def frame_number(frame: np.ndarray) -> int:
    grey = frame.astype(np.float32).mean(-1)
    number = 0
    for bit in range(BITS):
        row, column = divmod(bit, COLUMNS)
        block = grey[row * BLOCK + 4 : (row + 1) * BLOCK - 4, column * BLOCK + 4 : (column + 1) * BLOCK - 4]
        number |= int(block.mean() > 128) << bit
    return number


def decoded_numbers(path: Path) -> list[int]:
    return [frame_number(f) for f in read_frames(path)]


def average_rate(path: Path) -> Fraction:
    with av.open(str(path)) as container:
        return Fraction(container.streams.video[0].average_rate)


def write_mkv(path: Path, frames: np.ndarray, fps: int) -> None:
    with av.open(str(path), mode="w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# Two raw videos: A at 10 fps (20 s, mp4), B at 25 fps (12 s, mkv); C is not downloaded; D is not a video.
A, B, C, D = "-HvXd_vqJ5A", "ab_c-d_EF12", "zz-_zz_zz-z", "broken_vid1"
RAW = {A: (10, 200), B: (25, 300)}
ANNOTATION = {
    A: {
        "E_000002_000015": {
            "event": 1,
            "timestamps": [[2.05, 15.0]],
            "segments": {
                "A_0001_0003": {"stages": 1, "timestamps": [[1.0, 3.0]]},
                "A_0004_0004": {
                    "stages": 3,
                    "timestamps": [[4.0, 4.2], [4.2, 4.5], [4.5, 4.83]],
                },  # start = end in the key
                "A_0005_0005": {"stages": 1, "timestamps": [[5.0, 5.0]]},  # a stage with start = end: zero length
                "A_0007_0006": {"stages": 1, "timestamps": [[7.0, 6.0]]},  # reversed
                "A_0006_0020": {"stages": 1, "timestamps": [[6.0, 20.0]]},  # ends after its event
            },
        },
        "E_000018_000025": {
            "event": 4,
            "timestamps": [[18.0, 25.0]],
            "segments": {  # the video ends at 20 s
                "A_0000_0001": {"stages": 1, "timestamps": [[0.5, 1.5]]},
                "A_0001_0002": {"stages": 1, "timestamps": [[1.5, 2.5]]},  # 19.5-20.5 s: past the video's end
            },
        },
        "E_000001_000002": {"event": 2, "timestamps": [[1.0, 2.0]], "segments": None},
        "E_000030_000035": {
            "event": 1,
            "timestamps": [[30.0, 35.0]],
            "segments": {  # after the video's end
                "A_0001_0002": {"stages": 1, "timestamps": [[1.0, 2.0]]}
            },
        },
    },
    B: {
        "E_000003_000009": {
            "event": 3,
            "timestamps": [[3.3, 9.1]],
            "segments": {
                "A_0000_0001": {"stages": 1, "timestamps": [[0.0, 1.96]]},
                "A_0002_0005": {"stages": 3, "timestamps": [[2.5, 3.04], [3.04, 3.04], [3.04, 5.2]]},  # an empty stage
            },
        },
    },
    C: {
        "E_000001_000002": {
            "event": 1,
            "timestamps": [[1.0, 2.0]],
            "segments": {"A_0000_0001": {"stages": 1, "timestamps": [[0.0, 1.0]]}},
        }
    },
    D: {
        "E_000001_000002": {
            "event": 1,
            "timestamps": [[1.0, 2.0]],
            "segments": {"A_0000_0001": {"stages": 1, "timestamps": [[0.0, 1.0]]}},
        }
    },
}
GOOD = [
    f"{A}_E_000002_000015_A_0001_0003",
    f"{A}_E_000002_000015_A_0004_0004",
    f"{A}_E_000018_000025_A_0000_0001",
    f"{B}_E_000003_000009_A_0000_0001",
    f"{B}_E_000003_000009_A_0002_0005",
]
FAILED = {
    f"{A}_E_000002_000015_A_0005_0005": "zero_length",
    f"{A}_E_000002_000015_A_0007_0006": "reversed",
    f"{A}_E_000002_000015_A_0006_0020": "beyond_end",
    f"{A}_E_000018_000025_A_0001_0002": "beyond_end",
    f"{A}_E_000030_000035_A_0001_0002": "beyond_end",
    f"{C}_E_000001_000002_A_0000_0001": "missing_video",
    f"{D}_E_000001_000002_A_0000_0001": "undecodable",
}


def expected_frames(youtube_id: str, event_key: str, action_key: str) -> tuple[int, int]:
    """First and last raw frame of a sub-action, written out from the definition: raw frame k is at k / fps; the
    event clip holds the frames in [start, end); the sub-action holds the event clip's frames whose time, counted
    from the event clip's first frame, lies in [first stage's start, last stage's end)."""
    fps = RAW[youtube_id][0]
    event = ANNOTATION[youtube_id][event_key]
    stages = event["segments"][action_key]["timestamps"]
    first_event_frame = math.ceil(Fraction(str(event["timestamps"][0][0])) * fps)
    first = first_event_frame + math.ceil(Fraction(str(stages[0][0])) * fps)
    last = first_event_frame + math.ceil(Fraction(str(stages[-1][1])) * fps) - 1
    return first, last


@pytest.fixture(scope="module")
def finegym(tmp_path_factory):
    root = tmp_path_factory.mktemp("finegym")
    raw = root / "raw"
    raw.mkdir()
    write_mp4(raw / f"{A}.mp4", np.stack([numbered_frame(i) for i in range(RAW[A][1])]), fps=RAW[A][0])
    write_mkv(raw / f"{B}.mkv", np.stack([numbered_frame(i) for i in range(RAW[B][1])]), fps=RAW[B][0])
    (raw / f"{D}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    annotation = root / "finegym_annotation_info_v1.1.json"
    annotation.write_text(json.dumps(ANNOTATION))
    output = root / "clips"
    summary = prepare_finegym(annotation, raw, output, workers=2, progress=False)
    return {"root": root, "raw": raw, "annotation": annotation, "output": output, "summary": summary}


def test_finegym_clip_ids_first_last_frames_and_counts(finegym):
    output = finegym["output"]
    assert sorted(p.stem for p in output.glob("*.mp4")) == sorted(GOOD)
    for clip_id in GOOD:
        youtube_id = A if clip_id.startswith(A) else B
        event_key, action_key = clip_id[len(youtube_id) + 1 :][:15], clip_id[-11:]
        first, last = expected_frames(youtube_id, event_key, action_key)
        numbers = decoded_numbers(output / f"{clip_id}.mp4")
        assert abs(numbers[0] - first) <= 1 and abs(numbers[-1] - last) <= 1, (clip_id, numbers, first, last)
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), clip_id  # every frame, in order
        assert abs(len(numbers) - (last - first + 1)) <= 1
        assert average_rate(output / f"{clip_id}.mp4") == RAW[youtube_id][0]  # the source frame rate
    # the exact frames this implementation picks (same rule as the official two-step cut)
    assert decoded_numbers(output / f"{GOOD[0]}.mp4")[::19] == [31, 50]
    assert len(decoded_numbers(output / f"{B}_E_000003_000009_A_0000_0001.mp4")) == 49


def test_finegym_failures_are_reported_with_reasons(finegym):
    summary = finegym["summary"]
    assert (summary.done, summary.failed, summary.skipped) == (len(GOOD), len(FAILED), 0)
    failures = [json.loads(line) for line in (finegym["output"] / "failures.jsonl").read_text().splitlines()]
    assert {f["clip_id"]: f["reason"] for f in failures if not f["written"]} == FAILED
    # a zero-length stage inside a longer sub-action: reported, and the clip is made as the official cut makes it
    assert [(f["clip_id"], f["reason"]) for f in failures if f["written"]] == [(GOOD[4], "zero_length")]
    by_id = {f["clip_id"]: f for f in failures}
    assert C in by_id[f"{C}_E_000001_000002_A_0000_0001"]["detail"]
    assert "20.000" in by_id[f"{A}_E_000018_000025_A_0001_0002"]["detail"]  # where the video ends
    assert not list(finegym["output"].glob(".*"))  # no partial files left behind


def test_finegym_rerun_skips_finished_clips_and_remakes_a_deleted_one(finegym, tmp_path):
    output = finegym["output"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in output.glob("*.mp4")}
    (output / f"{GOOD[1]}.mp4").unlink()
    summary = load_command("prepare-finegym").main(
        [
            "--annotations",
            str(finegym["annotation"]),
            "--videos",
            str(finegym["raw"]),
            "--output",
            str(output),
            "--no-progress",
        ]
    )
    assert summary == 0
    after = {p.name: p.stat().st_mtime_ns for p in output.glob("*.mp4")}
    assert sorted(after) == sorted(mtimes)
    assert {name for name in after if after[name] != mtimes[name]} == {f"{GOOD[1]}.mp4"}
    first, last = expected_frames(A, "E_000002_000015", "A_0004_0004")
    assert decoded_numbers(output / f"{GOOD[1]}.mp4") == list(range(first, last + 1))
    # the report lists what is still missing after this run
    reasons = [json.loads(line)["reason"] for line in (output / "failures.jsonl").read_text().splitlines()]
    assert sorted(reasons) == sorted(FAILED.values())  # the noted clip exists now: skipped, no longer reported


def test_finegym_only_ids_and_event_clips(finegym, tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{A}_E_000002_000015\n{A}_E_000018_000025\nnot_a_clip\n")
    csv_ids = tmp_path / "train_finegd.csv"
    csv_ids.write_text(
        f"query_video,target_video,label1,label2,modification\n{B}_E_000003_000009_A_0002_0005,comp_1,1,407c,{{}}\n"
    )
    code = load_command("prepare-finegym").main(
        [
            "--annotations",
            str(finegym["annotation"]),
            "--videos",
            str(finegym["raw"]),
            "--output",
            str(tmp_path / "out"),
            "--only-ids",
            str(ids),
            str(csv_ids),
            "--event-clips",
            "--no-progress",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and (summary["done"], summary["failed"]) == (2, 1)
    assert sorted(p.stem for p in (tmp_path / "out").glob("*.mp4")) == [
        f"{A}_E_000002_000015",
        f"{B}_E_000003_000009_A_0002_0005",
    ]
    # the event clip: raw frames in [2.05 s, 15 s)
    assert decoded_numbers(tmp_path / "out" / f"{A}_E_000002_000015.mp4") == list(range(21, 150))
    # the event [18 s, 25 s) runs past the video's end (20 s)
    failures = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert [(f["clip_id"], f["reason"]) for f in failures if not f["written"]] == [
        (f"{A}_E_000018_000025", "beyond_end")
    ]


def test_finegym_shards_split_the_work_into_disjoint_parts(finegym, tmp_path, capsys):
    made = []
    for index in range(3):
        output = tmp_path / f"shard{index}"
        code = load_command("prepare-finegym").main(
            [
                "--annotations",
                str(finegym["annotation"]),
                "--videos",
                str(finegym["raw"]),
                "--output",
                str(output),
                "--shard",
                f"{index}/3",
                "--no-progress",
            ]
        )
        assert code == 0
        made.append({p.stem for p in output.glob("*.mp4")})
        made[-1] |= {
            json.loads(line)["clip_id"]
            for line in (output / "failures.jsonl").read_text().splitlines()
            if not json.loads(line)["written"]
        }
    assert sum(len(m) for m in made) == len(GOOD) + len(FAILED)  # disjoint ...
    assert set().union(*made) == set(GOOD) | set(FAILED)  # ... and complete
    assert sum(1 for m in made if m) >= 2
    with pytest.raises(SystemExit):
        load_command("prepare-finegym").main(["--annotations", "a", "--videos", "b", "--output", "c", "--shard", "3/3"])


def _ids(path: Path) -> set[str]:
    from modeling_tfcovr.preparation import read_id_list

    return read_id_list(path)


def test_id_list_from_tfcovr_csvs(tmp_path):
    from modeling_tfcovr.preparation import read_id_list

    (tmp_path / "test.csv").write_text(
        "query_id,query_video,target_video,target_videos_ids,modification\n"
        "0,x_E_000001_000002_A_0000_0001,comp_a_1,\"['comp_a_1', 'comp_a_2']\",text\n"
    )
    assert read_id_list(tmp_path / "test.csv") == {"x_E_000001_000002_A_0000_0001", "comp_a_1", "comp_a_2"}


def test_malformed_annotation_names_the_entry(tmp_path):
    bad = tmp_path / "ann.json"
    bad.write_text(json.dumps({A: {"E_000001_000002": {"event": 1, "timestamps": [[1.0]], "segments": None}}}))
    with pytest.raises(DataFormatError, match=r"-HvXd_vqJ5A.*E_000001_000002.*timestamps"):
        prepare_finegym(bad, tmp_path, tmp_path / "out", progress=False)


# FineDiving: <competition>/<index>/<NNNNN>.jpg, absolute frame numbers; competition names contain "_".
COMPETITION, OTHER = "FINADivingWorldCup2021_Men3m_final_r1", "FINAWorldChampionships2019_Women10m_final_r1"
DIVES = {(COMPETITION, 3): (37, 61, "407c"), (COMPETITION, 12): (0, 14, "5253b"), (OTHER, 1): (120, 139, "107b")}


def write_frame_folder(root: Path, competition: str, index: int, first: int, last: int, width: int = 64) -> Path:
    folder = root / competition / str(index)
    folder.mkdir(parents=True)
    for number in range(first, last + 1):
        frame = np.zeros((48, width, 3), np.uint8)
        frame[:, :64] = numbered_frame(number)[:, :width]
        Image.fromarray(frame).save(folder / f"{number:05d}.jpg", quality=90)
    return folder


class Payload:
    """Unpickling this runs `open(marker, "w")`: a stand-in for any code hidden in a pickle."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def finediving(tmp_path_factory):
    root = tmp_path_factory.mktemp("finediving")
    frames = root / "FINADiving_MTL_256s"
    for (competition, index), (first, last, _) in DIVES.items():
        write_frame_folder(frames, competition, index, first, last)
    gap = write_frame_folder(frames, OTHER, 2, 10, 20)
    (gap / "00015.jpg").unlink()
    broken = write_frame_folder(frames, OTHER, 3, 10, 20)
    (broken / "00013.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    sizes = write_frame_folder(frames, OTHER, 4, 10, 20)
    Image.fromarray(np.zeros((48, 80, 3), np.uint8)).save(sizes / "00016.jpg")
    (frames / OTHER / "5").mkdir()
    annotations = root / "Annotations"
    annotations.mkdir()
    fine_grained = {
        key: {
            "action_type": code,
            "dive_score": 80.0,
            "difficulty": 3.2,
            "steps_transit_frames": np.array([2, 9]),
            "frames_labels": np.arange(last - first + 1) % 3,
        }
        for key, (first, last, code) in DIVES.items()
    }
    for index in (2, 3, 4, 5):
        fine_grained[(OTHER, index)] = {"action_type": "107b", "frames_labels": np.zeros(3, np.int64)}
    (annotations / "FineDiving_fine-grained_annotation.pkl").write_bytes(pickle.dumps(fine_grained, protocol=3))
    (annotations / "train_split.pkl").write_bytes(pickle.dumps(list(fine_grained), protocol=3))
    output = root / "clips"
    summary = prepare_finediving(
        frames,
        output,
        workers=2,
        progress=False,
        annotation_files=[annotations / "FineDiving_fine-grained_annotation.pkl"],
    )
    return {"root": root, "frames": frames, "annotations": annotations, "output": output, "summary": summary}


def test_finediving_clips_ids_frames_fps_and_labels(finediving):
    output = finediving["output"]
    assert sorted(p.stem for p in output.glob("*.mp4")) == sorted(f"{c}_{i}" for c, i in DIVES)
    for (competition, index), (first, last, _) in DIVES.items():
        path = output / f"{competition}_{index}.mp4"
        assert decoded_numbers(path) == list(range(first, last + 1))  # every frame, in natural order
        assert average_rate(path) == 30
    table = (output / "finediving_labels.csv").read_text().splitlines()
    assert table[0] == "video_file,label" and f"{COMPETITION}_12,5253b" in table and len(table) == 1 + 3 + 4


def test_finediving_bad_folders_are_reported_per_clip(finediving):
    failures = [json.loads(line) for line in (finediving["output"] / "failures.jsonl").read_text().splitlines()]
    assert {f["clip_id"]: f["reason"] for f in failures} == {
        f"{OTHER}_2": "missing_frames",
        f"{OTHER}_3": "unreadable_frame",
        f"{OTHER}_4": "frame_size_mismatch",
        f"{OTHER}_5": "no_frames",
    }
    by_id = {f["clip_id"]: f["detail"] for f in failures}
    assert "00015" in by_id[f"{OTHER}_2"] and "00013.jpg" in by_id[f"{OTHER}_3"] and "00016.jpg" in by_id[f"{OTHER}_4"]
    summary = finediving["summary"]
    assert (summary.done, summary.failed) == (3, 4)


def test_finediving_rerun_skips_and_skip_bad_frames_writes_the_rest(finediving):
    output = finediving["output"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in output.glob("*.mp4")}
    code = load_command("prepare-finediving").main(
        ["--frames", str(finediving["frames"]), "--output", str(output), "--skip-bad-frames", "--no-progress"]
    )
    assert code == 0
    assert all(output.joinpath(name).stat().st_mtime_ns == mtime for name, mtime in mtimes.items())
    assert decoded_numbers(output / f"{OTHER}_3.mp4") == [10, 11, 12, 14, 15, 16, 17, 18, 19, 20]
    assert decoded_numbers(output / f"{OTHER}_4.mp4") == [10, 11, 12, 13, 14, 15, 17, 18, 19, 20]
    failures = {
        json.loads(line)["clip_id"]: json.loads(line) for line in (output / "failures.jsonl").read_text().splitlines()
    }
    assert failures[f"{OTHER}_3"]["written"] and failures[f"{OTHER}_5"]["reason"] == "no_frames"


def test_annotation_pickles_hold_builtins_and_numpy_only(finediving):
    split = load_data_pickle(finediving["annotations"] / "train_split.pkl")
    assert split[0] == (COMPETITION, 3) and all(isinstance(k, tuple) for k in split)
    with pytest.raises(UntrustedFileError, match="numpy"):  # numpy arrays need allow_numpy
        load_data_pickle(finediving["annotations"] / "FineDiving_fine-grained_annotation.pkl")
    data = load_data_pickle(finediving["annotations"] / "FineDiving_fine-grained_annotation.pkl", allow_numpy=True)
    np.testing.assert_array_equal(data[(COMPETITION, 3)]["frames_labels"], np.arange(25) % 3)


@pytest.mark.parametrize("allow_numpy", [False, True])
def test_a_reduce_payload_is_refused_without_running_it(tmp_path, allow_numpy):
    marker = tmp_path / "marker"
    payload = pickle.dumps({(COMPETITION, 1): Payload(str(marker))})
    with pytest.raises(UntrustedFileError, match=r"asks for io\.open"):
        loads_data_pickle(payload, "evil.pkl", allow_numpy=allow_numpy)
    assert not marker.exists()
    # the same through the command: exit status 2 (untrusted file), nothing run, nothing written
    (tmp_path / "evil.pkl").write_bytes(payload)
    (tmp_path / "frames" / COMPETITION / "1").mkdir(parents=True)
    from modeling_tfcovr.commands import run

    code = run(
        load_command("prepare-finediving").main,
        [
            "--frames",
            str(tmp_path / "frames"),
            "--output",
            str(tmp_path / "out"),
            "--annotations",
            str(tmp_path / "evil.pkl"),
        ],
    )
    assert code == 2 and not marker.exists()
    (tmp_path / "other.pkl").write_bytes(pickle.dumps([("01", 7)]))
    with pytest.raises(DataFormatError, match=r"none of the 1 .*keys.*'01_7'.*FINADivingWorldCup2021_Men3m_final_r1/1"):
        prepare_finediving(tmp_path / "frames", tmp_path / "out", annotation_files=[tmp_path / "other.pkl"])
    with pytest.raises(DataFormatError, match="not a readable pickle"):
        loads_data_pickle(payload[:20], "cut.pkl")


def test_clips_dataset_has_the_306_labels_and_trains_stage1_for_one_epoch(finegym, finediving, tmp_path):
    import datasets

    import modeling_tfcovr as mt

    videos = tmp_path / "videos"
    videos.mkdir()
    for clip_id in GOOD:
        os.link(finegym["output"] / f"{clip_id}.mp4", videos / f"{clip_id}.mp4")
    for competition, index in DIVES:
        os.link(finediving["output"] / f"{competition}_{index}.mp4", videos / f"{competition}_{index}.mp4")
    # FineGym labels from an element list (gym288 class ids), FineDiving's from the prepared stage-1 table
    gym = tmp_path / "gym288_train_element_v1.1.txt"
    gym.write_text(
        "\n".join(f"{c} {label}" for c, label in zip(GOOD, ["0", "287", "25", "24", "73"])) + "\n"
        f"{C}_E_000001_000002_A_0000_0001 11\n"
    )
    val = tmp_path / "val_finegd.csv"
    val.write_text(f'query_video,target_video,label1,label2,modification\n{GOOD[0]},{COMPETITION}_3,0,407c,"{{}}"\n')
    report = load_command("build-clips-dataset").main(
        [
            "--videos",
            str(videos),
            "--output",
            str(tmp_path / "data"),
            "--split",
            f"train={gym}",
            "--split",
            f"train={finediving['output'] / 'finediving_labels.csv'}",
            "--split",
            f"val={val}",
        ]
    )
    assert report == 0
    info = json.loads((tmp_path / "data" / "report.json").read_text())["splits"]
    assert info["train"]["clips"] == 7 and info["train"]["unknown_labels"] == ["24"]  # gym288 class 24 is not used
    assert info["train"]["missing_videos"] == sorted(
        [f"{C}_E_000001_000002_A_0000_0001"] + [f"{OTHER}_{i}" for i in (2, 3, 4, 5)]
    )
    train = datasets.load_dataset("parquet", data_files=str(tmp_path / "data" / "clips" / "train.parquet"))["train"]
    assert train.features["label_id"].names == list(TFCOVR_STAGE1_LABELS)
    rows = {r["video_id"]: r for r in train}
    assert rows[GOOD[1]]["label_id"] == 258 and rows[GOOD[2]]["label_id"] == 24  # '287' is last FineGym, '25' 25th
    assert rows[f"{COMPETITION}_3"]["label_id"] == 259 and rows[f"{OTHER}_1"]["label"] == "107b"
    assert rows[f"{OTHER}_1"]["label_id"] == 261

    output = tmp_path / "stage1"
    metrics = load_command("train-classifier").main(
        [
            "--dataset_dir",
            str(tmp_path / "data"),
            "--output_dir",
            str(output),
            "--config_overrides",
            "num_frames=4,image_size=16,patch_size=8,hidden_size=16,intermediate_size=32,num_hidden_layers=1,num_attention_heads=2",
            "--train_backbone",
            "--num_train_epochs",
            "1",
            "--per_device_train_batch_size",
            "4",
            "--use_cpu",
            "--seed",
            "0",
            "--disable_tqdm",
            "True",
            "--save_strategy",
            "no",
            "--load_best_model_at_end",
            "False",
            "--report_to",
            "none",
        ]
    )
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    model = mt.TFCoVRForVideoClassification.from_pretrained(output)
    assert model.config.id2label == id2label_of("tfcovr-306") and model.config.num_labels == 306
    history = json.loads((output / "log_history.json").read_text())
    assert any(h.get("epoch") == 1.0 and "loss" in h for h in history)


def test_clips_dataset_from_your_own_labels_and_conflicts(tmp_path):
    import datasets

    from modeling_tfcovr.preparation.clips_dataset import build_clips_dataset

    videos = tmp_path / "my_clips"
    videos.mkdir()
    for name in ("a", "b", "c"):
        write_mp4(videos / f"{name}.mp4", np.stack([numbered_frame(i) for i in range(4)]), fps=10)
    table = tmp_path / "labels.csv"
    table.write_text("video_file,label\na,vault\nb.mp4,beam\nc,vault\n")
    report = build_clips_dataset(tmp_path / "data", videos, {"train": [table]}, label_set=None)
    assert report["splits"]["train"]["clips"] == 3
    train = datasets.load_dataset("parquet", data_files=str(tmp_path / "data" / "clips" / "train.parquet"))["train"]
    assert train.features["label_id"].names == ["beam", "vault"]
    assert [(r["video"], r["label_id"]) for r in train] == [
        ("videos/a.mp4", 1),
        ("videos/b.mp4", 0),
        ("videos/c.mp4", 1),
    ]
    assert json.loads((tmp_path / "data" / "labels.json").read_text()) == ["beam", "vault"]
    assert (tmp_path / "data" / "videos" / "a.mp4").is_file()
    table.write_text("video_file,label\na,vault\na,beam\n")
    with pytest.raises(
        DataFormatError, match=r"'a' is labelled 'vault' at .*labels.csv:2 and 'beam' at .*labels.csv:3"
    ):
        build_clips_dataset(tmp_path / "data", videos, {"train": [table]}, label_set=None)


def test_finegym_killed_midway_keeps_finished_clips_and_the_rerun_completes(finegym, tmp_path):
    """SIGKILL (command and workers) as soon as the first clip exists: every clip under its final name is complete,
    and the rerun makes exactly the rest."""
    import signal
    import subprocess
    import sys
    import time

    events = {}
    for number in range(40):
        start = round(0.45 * number, 2)
        segments = {f"A_{k:04d}_{k:04d}": {"stages": 1, "timestamps": [[0.3 * k, 0.3 * k + 0.3]]} for k in range(5)}
        events[f"E_{number:06d}_{number + 2:06d}"] = {
            "event": 1,
            "timestamps": [[start, start + 1.6]],
            "segments": segments,
        }
    annotation = tmp_path / "many.json"
    annotation.write_text(json.dumps({A: events}))
    output = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "modeling_tfcovr.commands",
        "prepare-finegym",
        "--annotations",
        str(annotation),
        "--videos",
        str(finegym["raw"]),
        "--output",
        str(output),
        "--workers",
        "2",
        "--no-progress",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while not list(output.glob("[!.]*.mp4")):
            assert process.poll() is None and time.monotonic() < deadline, "no clip was written"
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the command and its worker processes
        process.wait()
        deadline = time.monotonic() + 30
        while _live_processes_in_group(process.pid) and time.monotonic() < deadline:  # SIGKILL lands asynchronously
            time.sleep(0.01)

    def expected(clip_id: str) -> list[int]:
        event = events[clip_id[len(A) + 1 : len(A) + 16]]
        k = int(clip_id[-4:])
        first_event_frame = math.ceil(Fraction(str(event["timestamps"][0][0])) * 10)
        return list(range(first_event_frame + 3 * k, first_event_frame + 3 * k + 3))

    finished = sorted(p.stem for p in output.glob("[!.]*.mp4"))
    assert 0 < len(finished) < 200
    for clip_id in finished:  # a clip under its final name is complete
        assert decoded_numbers(output / f"{clip_id}.mp4") == expected(clip_id)
    summary = prepare_finegym(annotation, finegym["raw"], output, workers=1, progress=False)
    assert (summary.skipped, summary.done, summary.failed) == (len(finished), 200 - len(finished), 0)
    assert len(list(output.glob("[!.]*.mp4"))) == 200 and not list(output.glob(".*"))  # partial files are gone
    for path in output.glob("*.mp4"):
        assert decoded_numbers(path) == expected(path.stem)


def _live_processes_in_group(group: int) -> list[int]:
    """Processes of a process group that are not dead or zombies (Linux /proc)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] not in "ZX":
            live.append(int(stat.parent.name))
    return live


def test_clip_writer_crops_odd_sizes_and_writes_atomically(tmp_path):
    from modeling_tfcovr.preparation.mp4 import ClipWriter

    writer = ClipWriter(tmp_path / "odd.mp4", Fraction(30000, 1001), 65, 49)
    for number in range(5):
        writer.write_frame(np.pad(numbered_frame(number), ((0, 1), (0, 1), (0, 0))))
    writer.write_frame(av.VideoFrame.from_ndarray(np.pad(numbered_frame(5), ((0, 1), (0, 1), (0, 0))), format="rgb24"))
    assert not (tmp_path / "odd.mp4").exists()  # only under its final name once complete
    writer.close()
    assert read_frames(tmp_path / "odd.mp4").shape == (6, 48, 64, 3)
    assert decoded_numbers(tmp_path / "odd.mp4") == [0, 1, 2, 3, 4, 5]
    assert average_rate(tmp_path / "odd.mp4") == Fraction(30000, 1001) and not list(tmp_path.glob(".*"))
