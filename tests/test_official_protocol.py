"""The official evaluation protocol against a literal reimplementation of the official test
(`FineGDDataset` in `src/data/finegd_test.py`, `TestCirco` and `compute_metrics` in `src/test/aim/circo_clip.py`),
on galleries with duplicated targets, valid targets missing from the gallery, ties, the query's own video among
the targets and galleries smaller than 50."""

from __future__ import annotations

from collections import defaultdict

import evaluate
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import modeling_tfcovr as mt
from modeling_tfcovr.metrics import METRIC_PATH, official_retrieval_metrics
from modeling_tfcovr.official_protocol import official_gallery_ids, official_rankings
from modeling_tfcovr.retrieval_evaluation import TripletSplit, cache_text_features, evaluate_split


def official_test(rows, embeddings, query_feats, all_videos):
    """The official test, transcribed: integer ids of every video file, a gallery of one embedding per row's
    target_video, similarities minus 100 on the query's own video, `np.argsort(...)[::-1][:50]`, then
    `compute_metrics` on the integer ids."""
    index_of = {name: i for i, name in enumerate(all_videos)}  # img_ids_indexes_map (glob order)
    tar_ids = torch.Tensor([index_of[row["target_video"]] for row in rows]).long()
    tar_img_feats = torch.stack([torch.as_tensor(embeddings[row["target_video"]]) for row in rows])
    ref_img_ids = [index_of[row["query_video"]] for row in rows]
    query_feats = F.normalize(query_feats, dim=-1)
    tar_img_feats = F.normalize(tar_img_feats, dim=-1)
    sims_q2t = query_feats @ tar_img_feats.T
    ref_ids = torch.Tensor(ref_img_ids).long()
    mask = (ref_ids[:, None] == tar_ids[None, :]).float()
    sims_q2t -= 100 * mask
    sims_q2t = sims_q2t.cpu().numpy()
    tar_ids = tar_ids.cpu().numpy()
    recalls = {}
    for i, query_sims in enumerate(sims_q2t):
        sorted_indices = np.argsort(query_sims)[::-1]
        recalls[str(i)] = [int(x) for x in tar_ids[sorted_indices][:50].tolist()]

    aps_atk, recalls_atk = defaultdict(list), defaultdict(list)
    for query_id, predictions in recalls.items():
        row = rows[int(query_id)]
        gt_img_ids = [str(index_of[x]) for x in row["target_videos"]]
        target_img_id = index_of[row["target_video"]]
        predictions = np.array(predictions, dtype=int)
        gt_img_ids = np.array(gt_img_ids, dtype=int)
        ap_labels = np.isin(predictions, gt_img_ids)
        precisions = np.cumsum(ap_labels, axis=0) * ap_labels
        precisions = precisions / np.arange(1, ap_labels.shape[0] + 1)
        for rank in (5, 10, 25, 50):
            aps_atk[rank].append(float(np.sum(precisions[:rank]) / min(len(gt_img_ids), rank)))
        recall_labels = predictions == target_img_id
        for rank in (5, 10, 25, 50):
            recalls_atk[rank].append(float(np.sum(recall_labels[:rank])))
    metrics = {f"map@{k}": round(float(np.mean(aps_atk[k])) * 100, 2) for k in (5, 10, 25, 50)}
    metrics.update({f"recall@{k}": round(float(np.mean(recalls_atk[k])) * 100, 2) for k in (5, 10, 25, 50)})
    rankings = [[all_videos[i] for i in recalls[str(q)]] for q in range(len(rows))]
    return metrics, rankings


def make_split(num_rows: int, num_videos: int, seed: int, dim: int = 8, gallery_target_share: float = 0.5):
    """Rows whose target_video repeats (duplicates in the gallery), valid targets that are never a row's
    target_video (missing from the gallery), queries that are also targets, and videos with identical embeddings
    (ties between different ids)."""
    rng = np.random.default_rng(seed)
    videos = [f"vid_{i:03d}" for i in range(num_videos)]
    row_targets = videos[: max(2, int(num_videos * gallery_target_share))]
    rows = []
    for i in range(num_rows):
        target = row_targets[rng.integers(len(row_targets))]
        extra = list(rng.choice(videos, size=rng.integers(0, 5), replace=True))  # repeats allowed, as in CSVs
        query = videos[rng.integers(num_videos)]
        rows.append(
            {
                "query_id": str(i),
                "query_video": query,
                "target_video": target,
                "target_videos": [target, *extra],
                "modification": f"text {i % 7}",
            }
        )
    embeddings = {video: rng.standard_normal(dim).astype(np.float32) for video in videos}
    for a, b in [(1, 2), (3, 4), (5, 6)]:  # exact ties between different videos
        embeddings[videos[b]] = embeddings[videos[a]].copy()
    return rows, embeddings, videos


@pytest.mark.parametrize("num_rows,num_videos,seed", [(12, 10, 0), (40, 30, 1), (200, 120, 2), (90, 400, 3)])
def test_official_rankings_and_counting_equal_the_official_test(num_rows, num_videos, seed):
    rows, embeddings, videos = make_split(num_rows, num_videos, seed)
    split = TripletSplit.from_rows(rows)
    query_feats = torch.randn(num_rows, 8, generator=torch.Generator().manual_seed(seed))
    # some queries equal their target's embedding: top scores tie with the duplicates of that target
    query_feats[::5] = torch.as_tensor(np.stack([embeddings[r["target_video"]] for r in rows[::5]]))
    expected, expected_rankings = official_test(rows, embeddings, query_feats.clone(), videos)

    gallery = official_gallery_ids(split.target_videos)
    result = official_rankings(query_feats, split.query_videos, gallery, np.stack([embeddings[v] for v in gallery]))
    assert result.video_ids == expected_rankings
    ours = official_retrieval_metrics(
        result.video_ids, split.valid_targets, split.target_videos, k_values=[5, 10, 25, 50]
    )
    assert ours == expected
    metric = evaluate.load(METRIC_PATH)
    assert (
        metric.compute(
            predictions=result.video_ids,
            references=split.valid_targets,
            single_targets=split.target_videos,
            protocol="official",
        )
        == expected
    )


def test_the_official_counting_on_hand_made_cases():
    # a valid target twice in the ranking is a hit twice: AP can exceed 1 (here 2 hits / min(|G| = 1, K))
    assert official_retrieval_metrics([["a", "a", "x"]], [["a"]], ["a"], k_values=[1, 3]) == {
        "map@1": 100.0,
        "map@3": 200.0,
        "recall@1": 100.0,
        "recall@3": 200.0,
    }
    # |G| counts repeated valid targets; the unique protocol would divide by 1
    assert official_retrieval_metrics([["a", "x"]], [["a", "a"]], k_values=[2]) == {"map@2": 50.0}
    # rounded to 2 decimals, as printed by the official code
    assert official_retrieval_metrics([["x", "x", "a"]], [["a"]], k_values=[3]) == {"map@3": 33.33}


def test_the_query_video_is_pushed_down_not_removed():
    gallery = ["q", "a", "b"]
    embeds = np.eye(3, dtype=np.float32)
    result = official_rankings(np.array([[1.0, 0.5, 0.2]], np.float32), ["q"], gallery, embeds)
    assert result.video_ids == [["a", "b", "q"]]  # a gallery under 50: the query's own video comes last
    assert result.scores[0, -1] == pytest.approx(1.0 / np.linalg.norm([1.0, 0.5, 0.2]) - 100, abs=1e-5)


def test_evaluate_split_reports_both_protocols(tiny_config, tiny_processor):
    rows, embeddings, videos = make_split(60, 40, seed=4, dim=32)
    for row in rows:
        row["modification"] = ["one more rotation", "reverse the direction", "with two rotations"][
            int(row["query_id"]) % 3
        ]
    split = TripletSplit.from_rows(rows)
    model = mt.TFCoVRModel(tiny_config).eval()
    video_ids = list(embeddings)
    video_embeds = np.stack([embeddings[v] for v in video_ids])
    report, _ = evaluate_split(model, tiny_processor, split, video_ids, video_embeds)

    texts, text_rows = cache_text_features(model, tiny_processor, split.modifications)
    with torch.no_grad():
        query_feats = model.get_query_features(
            query_video_embeds=torch.from_numpy(np.stack([embeddings[v] for v in split.query_videos])),
            text_embeds=texts[text_rows],
        )
    expected, _ = official_test(rows, embeddings, query_feats, videos)
    assert report["official"]["results"]["tfcovr"] == expected
    assert report["official"]["gallery_size"] == 60
    assert report["official"]["distinct_gallery_videos"] == len({r["target_video"] for r in rows})
    assert report["gallery_size"] == len({v for r in rows for v in r["target_videos"]})
    assert set(report["official"]["results"]) == set(report["results"])
    assert report["results"]["tfcovr"] != report["official"]["results"]["tfcovr"]
