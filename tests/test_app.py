"""The web app (`scripts/app.py`): its search logic against `pipe(...)`, and the running app driven in a real headless
Chromium (Debian's `chromium` + `chromium-driver`, which `.ci/run` installs) and called with `gradio_client`.

The app runs in its own process on a free port of 127.0.0.1, on a tiny random TF-CoVR model and a clip table of
rendered synthetic-gym clips (with labels). The ids the page shows must be those `pipe(...)` returns in this process
for the same query and text, in order.
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import modeling_tfcovr as mt
from modeling_tfcovr.data.synthetic import SyntheticConfig, render_clip, split_clips
from modeling_tfcovr.errors import TFCoVRError, UnsafePathError
from modeling_tfcovr.video_io import write_mp4

from .conftest import TINY_TEXT_WORDS, TINY_VISION, randomize_aim_parameters, tiny_text_config

gradio = pytest.importorskip("gradio")

ROOT = Path(__file__).resolve().parents[1]
TFCOVR = [sys.executable, "-m", "modeling_tfcovr.commands"]  # the `tfcovr` program
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
NUM_CLIPS = 10
QUERY, TEXT, TOP_K = "syn_test_00003", "one more rotation", 5


@pytest.fixture(scope="module")
def app_data(tmp_path_factory):
    """A tiny random model saved for the pipeline, and a clip table (video_id, video, label) of rendered clips."""
    root = tmp_path_factory.mktemp("app")
    tokenizer = mt.build_word_level_tokenizer(TINY_TEXT_WORDS)
    # Weights drawn wider than the default 0.02, so that the clips' scores are apart (a well-defined ranking).
    config = mt.TFCoVRConfig(
        vision_config={**TINY_VISION, "initializer_range": 0.5},
        initializer_range=0.5,
        text_config=tiny_text_config(len(tokenizer)),
        embed_dim=32,
        combiner_projection_dim=48,
        combiner_hidden_dim=64,
    )
    video_processor = mt.TFCoVRVideoProcessor(
        num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    torch.manual_seed(0)
    model = mt.TFCoVRModel(config).eval()
    randomize_aim_parameters(model)
    mt.save_for_pipeline(model, mt.TFCoVRProcessor(video_processor, tokenizer), root / "model")

    synthetic = SyntheticConfig(
        size=64, num_frames=8, apparatus=("floor", "beam"), rotations=(0.5, 1.0, 1.5), test_clips_per_label=1
    )
    (root / "data" / "videos").mkdir(parents=True)
    rows = []
    for clip, params in split_clips(synthetic, seed=0, split="test")[:NUM_CLIPS]:
        write_mp4(root / "data" / "videos" / f"{clip.video_id}.mp4", render_clip(params))
        rows.append({"video_id": clip.video_id, "video": f"videos/{clip.video_id}.mp4", "label": clip.label.name})
    with open(root / "data" / "clips.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["video_id", "video", "label"])
        writer.writeheader()
        writer.writerows(rows)
    (root / "notes.txt").write_text("these are notes, not a video\n")
    return {
        "root": root,
        "model": root / "model",
        "table": root / "data" / "clips.csv",
        "data": root / "data",
        "labels": {row["video_id"]: row["label"] for row in rows},
        "paths": {row["video_id"]: str(root / "data" / row["video"]) for row in rows},
    }


@pytest.fixture(scope="module")
def expected(app_data):
    """`pipe(...)` in this process, on a gallery indexed here from the same files."""
    from transformers import pipeline

    pipe = pipeline("composed-video-retrieval", model=str(app_data["model"]), trust_remote_code=True)
    ids = list(app_data["paths"])
    gallery = pipe.index([app_data["paths"][i] for i in ids], video_ids=ids, progress=False)
    answers = pipe(video=app_data["paths"][QUERY], text=TEXT, gallery=gallery, top_k=TOP_K)
    assert len(answers) == TOP_K and QUERY not in [a["video_id"] for a in answers]
    scores = [a["score"] for a in answers]
    # The ranking is well defined: no two results within display precision of each other.
    assert min(np.diff(scores) * -1) > 1e-4, scores
    return {"pipe": pipe, "gallery": gallery, "answers": answers}


# ----------------------------------------------------------------------------------------------------------------------
# The logic behind the page, in this process
# ----------------------------------------------------------------------------------------------------------------------


def test_search_service_answers_as_the_pipeline_and_explains_bad_input(app_data, expected):
    from modeling_tfcovr.app import SearchService, read_video_list

    ids, paths, labels = read_video_list(app_data["table"], app_data["data"])
    assert ids == list(app_data["paths"]) and paths == [app_data["paths"][i] for i in ids]
    assert labels == app_data["labels"]
    service = SearchService(expected["pipe"], expected["gallery"], labels)
    results = service.search(QUERY, None, TEXT, TOP_K)
    assert [r["video_id"] for r in results] == [a["video_id"] for a in expected["answers"]]
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    assert [r["label"] for r in results] == [app_data["labels"][a["video_id"]] for a in expected["answers"]]
    np.testing.assert_allclose([r["score"] for r in results], [a["score"] for a in expected["answers"]], atol=1e-6)

    # The app's own loader (this package's classes, not the model folder's code) answers the same.
    from modeling_tfcovr.app import load_pipeline

    own = SearchService(load_pipeline(app_data["model"]), expected["gallery"], labels).search(QUERY, None, TEXT, TOP_K)
    assert own == results

    # A gallery whose ids are not the file stems: the query's own entry is still never a result.
    renamed = mt.RetrievalIndex([f"clip-{i}" for i in ids], np.asarray(expected["gallery"].embeddings), paths=paths)
    renamed_results = SearchService(expected["pipe"], renamed).search(f"clip-{QUERY}", None, TEXT, len(ids))
    assert len(renamed_results) == len(ids) - 1 and f"clip-{QUERY}" not in [r["video_id"] for r in renamed_results]

    with pytest.raises(TFCoVRError, match="choose a query clip"):
        service.search(None, None, TEXT, 3)
    with pytest.raises(TFCoVRError, match="type a modification"):
        service.search(QUERY, None, "   ", 3)
    with pytest.raises(TFCoVRError, match="'notes.txt' is not a video the app can read"):
        service.search(None, str(app_data["root"] / "notes.txt"), TEXT, 3)
    with pytest.raises(TFCoVRError, match="'nope' is not a video of the gallery"):
        service.search("nope", None, TEXT, 3)

    # A saved gallery loads as the app loads it; a labels table gives the labels.
    from modeling_tfcovr.app import load_gallery, read_labels

    expected["gallery"].save(app_data["root"] / "saved-gallery")
    loaded = load_gallery(app_data["root"] / "saved-gallery")
    assert list(loaded.video_ids) == ids and list(loaded.paths) == paths
    assert SearchService(expected["pipe"], loaded).search(QUERY, None, TEXT, TOP_K) == [
        {**r, "label": None} for r in results
    ]
    assert read_labels(app_data["table"]) == app_data["labels"]
    with pytest.raises(FileNotFoundError, match="no saved gallery"):
        load_gallery(app_data["root"] / "notes.txt")

    bad_table = app_data["root"] / "escape.csv"
    bad_table.write_text("video_id,video\nx,../../etc/passwd\n")
    with pytest.raises(UnsafePathError):
        read_video_list(bad_table)


# ----------------------------------------------------------------------------------------------------------------------
# The running app
# ----------------------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(app_data, tmp_path_factory):
    """`scripts/app.py` in its own process, indexing the clip table at start; yields its URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "app.log"
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio")),
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    # Paths relative to the app's working folder, as a user types them.
    command = [*TFCOVR, "app", "--model", "model", "--videos", "data/clips.csv",
               "--video-root", "data", "--port", str(port)]  # fmt: skip
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=app_data["root"])
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240
    while True:
        if process.poll() is not None:
            pytest.fail(f"the app exited with status {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the app did not answer on {url} within 240 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1250",
    ):
        options.add_argument(argument)
    profile = tempfile.mkdtemp(prefix="tfcovr-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _save_artifact(path: Path) -> None:
    """Copies a test artefact to $TFCOVR_TEST_ARTIFACTS when it is set."""
    folder = os.environ.get("TFCOVR_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


@pytest.mark.slow
def test_app_in_a_headless_browser_shows_the_pipelines_results(server, browser, app_data, expected, tmp_path):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # Gradio re-renders components (and toasts come and go) while a condition is being read: retry on stale elements.
    wait = WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(server)
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#query-id input"))).click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f'#query-id li[aria-label="{QUERY}"]'))).click()
    query_video = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#query-video video")))
    assert query_video.get_attribute("src").endswith(f"/{QUERY}.mp4")
    browser.find_element(By.CSS_SELECTOR, "#modification textarea").send_keys(TEXT)
    browser.find_element(By.ID, "search-button").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results-table td.video-id")))

    answers = expected["answers"]
    shown = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#results-table td.video-id")]
    assert shown == [a["video_id"] for a in answers]
    scores = [float(cell.text) for cell in browser.find_elements(By.CSS_SELECTOR, "#results-table td.score")]
    np.testing.assert_allclose(scores, [a["score"] for a in answers], atol=6e-5)  # shown with 4 decimals
    labels = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#results-table td.label")]
    assert labels == [app_data["labels"][a["video_id"]] for a in answers]
    # One playable video per result, in rank order; the query's own video is not among them.
    wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".result-video video")) == TOP_K)
    sources = [v.get_attribute("src") for v in browser.find_elements(By.CSS_SELECTOR, ".result-video video")]
    assert [s.rsplit("/", 1)[-1] for s in sources] == [f"{a['video_id']}.mp4" for a in answers]
    first = browser.find_element(By.CSS_SELECTOR, ".result-video video")
    wait.until(
        lambda driver: driver.execute_script("return arguments[0].readyState >= 1 && arguments[0].duration > 0", first)
    )
    time.sleep(1)  # let the videos paint their first frame for the screenshot
    screenshot = tmp_path / "app.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    _save_artifact(screenshot)

    # A file that is not a video: a clear message in the page, naming the file.
    browser.find_element(By.CSS_SELECTOR, "#query-upload input[type=file]").send_keys(
        str(app_data["root"] / "notes.txt")
    )
    toast = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid='toast-body']")))
    assert "'notes.txt' is not a video the app can read" in toast.text
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
    # The file is dropped; an empty modification, searched: another message, and the old results are cleared.
    browser.find_element(By.CSS_SELECTOR, "[data-testid='toast-body'] .toast-close").click()
    wait.until(lambda driver: "notes.txt" not in driver.find_element(By.ID, "query-upload").text)
    browser.find_element(By.CSS_SELECTOR, "#modification textarea").send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    browser.find_element(By.ID, "search-button").click()
    wait.until(
        lambda driver: any(
            "type a modification" in toast.text
            for toast in driver.find_elements(By.CSS_SELECTOR, "[data-testid='toast-body']")
        )
    )
    wait.until(lambda driver: not driver.find_elements(By.CSS_SELECTOR, "#results-table td.video-id"))


@pytest.mark.slow
def test_app_answers_gradio_client_calls(server, app_data, expected):
    """Runs after the browser test: it ends by replacing the app's gallery."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    assert {"/search", "/check_query", "/index_videos"} <= set(
        client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    )
    answers = expected["answers"]
    results = client.predict(QUERY, None, TEXT, TOP_K, api_name="/search")
    assert [r["video_id"] for r in results] == [a["video_id"] for a in answers]
    np.testing.assert_allclose([r["score"] for r in results], [a["score"] for a in answers], atol=1e-5)
    assert [r["label"] for r in results] == [app_data["labels"][a["video_id"]] for a in answers]

    # An uploaded query clip: the same answers as the pipeline gives for that file (its own video left out).
    upload = app_data["paths"][QUERY]
    by_upload = client.predict(None, handle_file(upload), TEXT, 3, api_name="/search")
    assert [r["video_id"] for r in by_upload] == [a["video_id"] for a in answers[:3]]

    with pytest.raises(AppError, match="'notes.txt' is not a video the app can read"):
        client.predict(None, handle_file(str(app_data["root"] / "notes.txt")), TEXT, 3, api_name="/search")
    with pytest.raises(AppError, match="type a modification"):
        client.predict(QUERY, None, "", 3, api_name="/search")

    # Indexing uploaded videos replaces the gallery; the file that is not a video is skipped and reported.
    kept = list(app_data["paths"])[:4]
    summary, _, _ = client.predict(
        [handle_file(app_data["paths"][i]) for i in kept] + [handle_file(str(app_data["root"] / "notes.txt"))],
        api_name="/index_videos",
    )
    assert summary["videos"] == 4 and [f["video_id"] for f in summary["failures"]] == ["notes"]
    small = client.predict(kept[0], None, TEXT, 10, api_name="/search")
    subset = expected["pipe"].index([app_data["paths"][i] for i in kept], video_ids=kept, progress=False)
    reference = expected["pipe"](video=app_data["paths"][kept[0]], text=TEXT, gallery=subset, top_k=10)
    assert [r["video_id"] for r in small] == [a["video_id"] for a in reference] and len(small) == 3
    assert all(r["label"] is None for r in small)  # uploaded videos come without labels
