#!/usr/bin/env python
"""Benchmark: top-k retrieval with `RetrievalIndex` against the official evaluation and the bare matrix product.

Part 1, exact search (defaults: 1,000 queries x 100,000 gallery videos x 768-d, top 50), all on the same random
L2-normalised float32 embeddings in one process:

- official: what the TF-CoVR evaluation does, i.e. normalise, `sims = queries @ gallery.T`, lower each query's own
  video by 100 through a (Q, N) float mask, then a full `np.argsort` of every row and the first 50 ids;
- bare product: `queries @ gallery.T` alone, the floor of any exact search;
- ours: `RetrievalIndex.search(..., exclude_ids=...)` (chunked products + top-k, never a full sort);
- FAISS flat: `faiss.IndexFlatIP.search(queries, k + 1)` on the same gallery (the own video removed afterwards,
  untimed), the exact search FAISS itself offers; its rankings must equal ours too.

Rankings must be identical to the official full sort (up to the order of scores that are equal within float32
rounding, checked against float64 scores); the script exits with status 1 otherwise.

Part 2, FAISS (defaults: 1,000,000 x 768 gallery, `IVF512,Flat` with `nprobe=8`): build time, resident memory per step
(how many copies of the gallery exist), search time against exact search on the same queries, and recall@50 against
exact search. The gallery is clustered (`--faiss-clusters`), as real video embeddings are: on structureless random
vectors no approximate index reaches a high recall without scanning most of the gallery.

Example:
    python scripts/bench/retrieval.py                 # full size (a few minutes on 2 cores)
    python scripts/bench/retrieval.py --quick         # seconds
    python scripts/bench/retrieval.py --queries 200 --gallery 20000 --skip-faiss
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from benchmarking import (
    BenchmarkReport,
    PeakMemory,
    command_line,
    current_rss_bytes,
    format_bytes,
    format_table,
    parse_benchmark_args,
    ratio,
    release_memory,
    settings_of,
    time_call,
)

from modeling_tfcovr.retrieval_index import RetrievalIndex

GENERATION_CHUNK = 65536
NORMALIZE_CHUNK = 4096

QUICK = {
    "queries": 200,
    "gallery": 20000,
    "repeats": 2,
    "faiss_gallery": 100000,
    "faiss_queries": 200,
    "exact_queries": 200,
    "nlist": 128,
    "nprobe": 8,
    "faiss_clusters": 200,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000, help="queries of the exact-search benchmark")
    parser.add_argument("--gallery", type=int, default=100000, help="gallery size of the exact-search benchmark")
    parser.add_argument("--dim", type=int, default=768, help="embedding dimension")
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each method (after one warm-up run)")
    parser.add_argument("--batch-size", type=int, default=1024, help="RetrievalIndex.search batch_size")
    parser.add_argument(
        "--gallery-chunk-size", type=int, default=16384, help="RetrievalIndex.search gallery_chunk_size"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-6,
        help="scores closer than this (float64) count as ties when rankings are compared",
    )
    parser.add_argument("--skip-exact", action="store_true", help="skip part 1 (exact search)")
    parser.add_argument("--skip-faiss", action="store_true", help="skip part 2 (FAISS)")
    parser.add_argument("--faiss-gallery", type=int, default=1_000_000, help="gallery size of the FAISS benchmark")
    parser.add_argument("--faiss-queries", type=int, default=1000, help="queries searched with FAISS")
    parser.add_argument(
        "--exact-queries",
        type=int,
        default=500,
        help="of those, how many are also searched exactly (the recall reference and the time ratio)",
    )
    parser.add_argument(
        "--faiss-index",
        default="ivf",
        help="a faiss.index_factory string (e.g. 'HNSW32', 'IVF1024,PQ32'), or 'ivf': "
        "'IVF{--nlist},Flat' with 'nprobe={--nprobe}'",
    )
    parser.add_argument(
        "--faiss-parameters", default="", help="FAISS ParameterSpace parameters of --faiss-index, e.g. 'efSearch=128'"
    )
    parser.add_argument("--nlist", type=int, default=512, help="IVF clusters (--faiss-index ivf)")
    parser.add_argument("--nprobe", type=int, default=8, help="IVF clusters visited per query (--faiss-index ivf)")
    parser.add_argument(
        "--train-points-per-list", type=int, default=40, help="IVF k-means training sample = this x nlist gallery rows"
    )
    parser.add_argument(
        "--faiss-clusters",
        type=int,
        default=2000,
        help="clusters of the synthetic 1M gallery (0: structureless random vectors)",
    )
    parser.add_argument(
        "--faiss-spread",
        type=float,
        default=1.0,
        help="noise norm relative to the cluster centre's (larger: looser clusters)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run: " + ", ".join(f"{k.replace('_', '-')}={v}" for k, v in QUICK.items()),
    )
    parser.add_argument("--output", type=Path, default=Path("runs/bench/retrieval.json"), help="JSON report")
    return parser


# ----------------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------------


def normalize_rows_(array: np.ndarray) -> np.ndarray:
    """L2-normalises the rows of a float32 array in place, in cache-sized chunks (no full-size temporaries)."""
    for start in range(0, array.shape[0], NORMALIZE_CHUNK):
        block = array[start : start + NORMALIZE_CHUNK]
        block /= np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]
    return array


def random_unit_rows(generator: torch.Generator, rows: int, dim: int) -> np.ndarray:
    """`(rows, dim)` float32 rows uniformly distributed on the unit sphere, generated in chunks with torch's
    (multi-threaded) normal sampler straight into the output array."""
    out = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, GENERATION_CHUNK):
        stop = min(start + GENERATION_CHUNK, rows)
        torch.randn(stop - start, dim, generator=generator, out=torch.from_numpy(out[start:stop]))
    return normalize_rows_(out)


def clustered_unit_rows(
    generator: torch.Generator, centres: np.ndarray, rows: int, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    """`rows` unit vectors around random `centres` (unit rows): `normalise(centre + spread * noise)`, where the noise
    has the norm of a unit vector on average.

    Returns the rows (float32) and the centre of each row.
    """
    dim = centres.shape[1]
    labels = torch.randint(0, centres.shape[0], (rows,), generator=generator).numpy()
    out = np.empty((rows, dim), dtype=np.float32)
    scale = np.float32(spread / np.sqrt(dim))
    for start in range(0, rows, GENERATION_CHUNK):
        stop = min(start + GENERATION_CHUNK, rows)
        block = out[start:stop]
        torch.randn(stop - start, dim, generator=generator, out=torch.from_numpy(block))
        block *= scale
        block += centres[labels[start:stop]]
    return normalize_rows_(out), labels


def video_ids(count: int) -> list[str]:
    return [f"video_{i:07d}" for i in range(count)]


# ----------------------------------------------------------------------------------------------------------------------
# The methods
# ----------------------------------------------------------------------------------------------------------------------


def official_search(queries: np.ndarray, gallery: np.ndarray, own: np.ndarray, top_k: int) -> np.ndarray:
    """The official TF-CoVR evaluation's ranking, step for step: torch normalisation and product, a float mask that
    lowers each query's own video by 100, then per query `tar_ids[np.argsort(sims)[::-1]][:top_k]`."""
    query_feats = F.normalize(torch.from_numpy(queries), dim=-1)
    tar_feats = F.normalize(torch.from_numpy(gallery), dim=-1)
    tar_ids = torch.arange(gallery.shape[0])
    sims = query_feats @ tar_feats.T
    mask = (torch.from_numpy(own)[:, None] == tar_ids[None, :]).float()
    sims -= 100 * mask
    del mask
    sims = sims.numpy()
    tar_ids = tar_ids.numpy()
    ranked = np.empty((sims.shape[0], top_k), dtype=np.int64)
    for row, query_sims in enumerate(sims):
        sorted_indices = np.argsort(query_sims)[::-1]
        ranked[row] = tar_ids[sorted_indices][:top_k]
    return ranked


def product_into_buffer(queries: torch.Tensor, gallery: torch.Tensor) -> Callable[[], torch.Tensor]:
    """`queries @ gallery.T` written into one preallocated `(Q, N)` buffer at every call: the compute floor."""
    buffer = torch.empty(queries.shape[0], gallery.shape[0])
    return lambda: torch.matmul(queries, gallery.T, out=buffer)


FAISS_FLAT = "faiss IndexFlatIP.search (k + 1)"


def bench_faiss_flat(
    gallery: np.ndarray, queries: np.ndarray, own: np.ndarray, k: int, measure: Callable[[str, Callable], Any]
) -> np.ndarray:
    """Times FAISS's exact inner-product search on the same data as ours and returns its `(Q, k)` ranking with each
    query's own video removed (outside the timing: FAISS is timed doing only its search)."""
    import faiss

    flat = faiss.IndexFlatIP(gallery.shape[1])
    flat.add(gallery)
    _, found = measure(FAISS_FLAT, lambda: flat.search(queries, k + 1))
    flat.reset()  # frees its copy of the gallery
    kept = found != own[:, None]
    ranked = np.empty((found.shape[0], k), dtype=np.int64)
    for row in range(found.shape[0]):
        ranked[row] = found[row][kept[row]][:k]
    return ranked


def compare_rankings(
    ours: np.ndarray, reference: np.ndarray, queries: np.ndarray, gallery: np.ndarray, tolerance: float
) -> dict[str, Any]:
    """Compares two `(Q, k)` rankings.

    Rows that differ are accepted only when, position by position, both rankings have the same float64 score
    within `tolerance`: then they differ only in the order of items whose scores are equal up to float32 rounding
    (each path rounds its products differently). A wrong item or a wrong order shows as a score gap far larger.
    """
    identical = (ours == reference).all(axis=1)
    worst_gap = 0.0
    for row in np.flatnonzero(~identical):
        query = queries[row].astype(np.float64)
        query /= np.linalg.norm(query)
        scores = {}
        for name, ranking in (("ours", ours[row]), ("reference", reference[row])):
            vectors = gallery[ranking].astype(np.float64)
            scores[name] = vectors @ query / np.linalg.norm(vectors, axis=1)
        worst_gap = max(worst_gap, float(np.abs(scores["ours"] - scores["reference"]).max()))
    return {
        "identical_rows": int(identical.sum()),
        "rows": int(identical.size),
        "max_score_gap_in_differing_rows": worst_gap,
        "tolerance": tolerance,
        "passed": bool(worst_gap <= tolerance),
    }


# ----------------------------------------------------------------------------------------------------------------------
# Part 1: exact search
# ----------------------------------------------------------------------------------------------------------------------


def bench_exact(args: argparse.Namespace, report: BenchmarkReport) -> list[dict[str, Any]]:
    generator = torch.Generator().manual_seed(args.seed)
    gallery = random_unit_rows(generator, args.gallery, args.dim)
    ids = video_ids(args.gallery)
    # Each query is a perturbed copy of its own gallery video, which would rank first if it were not excluded.
    own = torch.randperm(args.gallery, generator=generator)[: args.queries].numpy()
    queries = gallery[own] + random_unit_rows(generator, args.queries, args.dim)
    normalize_rows_(queries)
    exclude = [ids[i] for i in own]
    k = args.top_k

    rows: list[dict[str, Any]] = []

    def measure(name: str, function) -> Any:
        with PeakMemory() as memory:  # the warm-up run doubles as the memory measurement
            result = function()
        timing, result = time_call(function, repeats=args.repeats, warmup=0)
        rows.append({"method": name, **timing.to_dict(), "peak_memory_bytes": memory.delta_bytes})
        print(f"  {name}: best {timing.best:.3f} s, peak +{format_bytes(memory.delta_bytes)}", flush=True)
        return result

    print(f"exact search: {args.queries} queries x {args.gallery} gallery x {args.dim}-d, top {k}", flush=True)
    official = measure("official (product + mask + full argsort)", lambda: official_search(queries, gallery, own, k))

    query_t, gallery_t = torch.from_numpy(queries), torch.from_numpy(gallery)
    measure("bare product (q @ g.T)", lambda: query_t @ gallery_t.T)
    # The product alone also pays for a fresh (Q, N) output, i.e. page faults; writing into a reused buffer is the
    # pure compute floor.
    measure("bare product into a reused buffer (compute floor)", product_into_buffer(query_t, gallery_t))

    with PeakMemory() as build_memory:
        start = time.perf_counter()
        index = RetrievalIndex(ids, gallery)
        build_s = time.perf_counter() - start
    print(f"  RetrievalIndex build: {build_s:.3f} s, +{format_bytes(build_memory.delta_bytes)}", flush=True)

    def ours_search():
        return index.search(
            queries,
            top_k=k,
            exclude_ids=exclude,
            batch_size=args.batch_size,
            gallery_chunk_size=args.gallery_chunk_size,
        )

    result = measure("ours (RetrievalIndex.search)", ours_search)
    rows.append(
        {
            "method": "ours, index build (once)",
            "best_s": build_s,
            "median_s": build_s,
            "peak_memory_bytes": build_memory.delta_bytes,
        }
    )
    faiss_flat = bench_faiss_flat(gallery, queries, own, k, measure) if args.faiss_flat else None

    by_name = {row["method"]: row for row in rows}
    official_s = by_name["official (product + mask + full argsort)"]["best_s"]
    bare_s = by_name["bare product (q @ g.T)"]["best_s"]
    ours_s = by_name["ours (RetrievalIndex.search)"]["best_s"]
    floor_s = by_name["bare product into a reused buffer (compute floor)"]["best_s"]
    for row in rows:
        row["vs_bare_product"] = ratio(row["best_s"], bare_s)
        row["speedup_vs_official"] = ratio(official_s, row["best_s"])

    comparison = compare_rankings(result.indices, official, queries, gallery, args.tolerance)
    own_excluded = not (result.indices == own[:, None]).any()
    rankings_equal = comparison.pop("passed")
    report.add_check(
        "exact_rankings_equal_official",
        rankings_equal and own_excluded,
        own_video_never_returned=own_excluded,
        **comparison,
    )
    report.add_target("exact_time_vs_bare_product", ratio(ours_s, bare_s), "<= 1.3x", ratio(ours_s, bare_s) <= 1.3)
    report.add_target("exact_speedup_vs_official", ratio(official_s, ours_s), ">= 5x", ratio(official_s, ours_s) >= 5)
    if faiss_flat is not None:
        flat_s = by_name[FAISS_FLAT]["best_s"]
        flat_comparison = compare_rankings(result.indices, faiss_flat, queries, gallery, args.tolerance)
        report.add_check("exact_rankings_equal_faiss_flat", flat_comparison.pop("passed"), **flat_comparison)
        report.add_target(
            "exact_time_vs_faiss_flat", ratio(ours_s, flat_s), "<= 1x (at least as fast)", ours_s <= flat_s
        )
        report.results["faiss_flat"] = {"time_vs_ours": ratio(flat_s, ours_s), "rankings": flat_comparison}
    report.results["exact"] = {
        "rows": rows,
        "gallery_bytes": gallery.nbytes,
        "time_vs_bare_product": ratio(ours_s, bare_s),
        "time_vs_compute_floor": ratio(ours_s, floor_s),
        "official_vs_bare_product": ratio(official_s, bare_s),
        "speedup_vs_official": ratio(official_s, ours_s),
        "speedup_vs_official_including_build": ratio(official_s, ours_s + build_s),
    }
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# Part 2: FAISS
# ----------------------------------------------------------------------------------------------------------------------


def bench_faiss(args: argparse.Namespace, report: BenchmarkReport) -> list[dict[str, Any]]:
    import faiss

    generator = torch.Generator().manual_seed(args.seed + 1)
    n, dim, k = args.faiss_gallery, args.dim, args.top_k
    gallery_bytes = n * dim * 4
    factory, parameters = args.faiss_index, args.faiss_parameters
    build_kwargs: dict[str, Any] = {"seed": args.seed}
    if factory == "ivf":
        nlist = min(args.nlist, n)
        factory, parameters = f"IVF{nlist},Flat", parameters or f"nprobe={min(args.nprobe, nlist)}"
        build_kwargs["max_train_points"] = min(n, args.train_points_per_list * nlist)
    print(
        f"FAISS {factory} ({parameters or 'default parameters'}): {n} gallery x {dim}-d, {args.faiss_queries} "
        f"queries, top {k}",
        flush=True,
    )

    release_memory()
    rss = {"start": current_rss_bytes()}
    start = time.perf_counter()
    if args.faiss_clusters > 0:
        centres = random_unit_rows(generator, args.faiss_clusters, dim)
        gallery, _ = clustered_unit_rows(generator, centres, n, args.faiss_spread)
        queries, _ = clustered_unit_rows(generator, centres, args.faiss_queries, args.faiss_spread)
    else:
        gallery = random_unit_rows(generator, n, dim)
        queries = random_unit_rows(generator, args.faiss_queries, dim)
    generate_s = time.perf_counter() - start
    ids = video_ids(n)
    release_memory()
    rss["gallery_generated"] = current_rss_bytes()

    with PeakMemory() as construct_memory:
        start = time.perf_counter()
        # copy=False: the caller's array (as if just read from disk) is normalised in place and becomes the index's
        # storage; with the default copy=True the index would add one normalised copy of its own.
        index = RetrievalIndex(ids, gallery, copy=False)
        construct_s = time.perf_counter() - start
    rss["index_constructed"] = current_rss_bytes()
    del gallery
    release_memory()
    rss["caller_array_dropped"] = current_rss_bytes()

    with PeakMemory() as build_memory:
        start = time.perf_counter()
        index.build_faiss_index(factory, parameters, **build_kwargs)
        build_s = time.perf_counter() - start
    release_memory()
    rss["faiss_built"] = current_rss_bytes()
    print(
        f"  generate {generate_s:.1f} s, RetrievalIndex {construct_s:.1f} s, "
        f"build_faiss_index {build_s:.1f} s (threads: faiss {faiss.omp_get_max_threads()})",
        flush=True,
    )

    exact_queries = queries[: args.exact_queries]
    warm = queries[: min(16, len(queries))]
    index.search(warm, top_k=k, backend="exact")
    exact_timing, exact = time_call(lambda: index.search(exact_queries, top_k=k, backend="exact"), repeats=1, warmup=0)
    index.search(warm, top_k=k, backend="faiss")
    with PeakMemory() as search_memory:
        faiss_timing, approximate = time_call(
            lambda: index.search(queries, top_k=k, backend="faiss"), repeats=max(1, args.repeats), warmup=0
        )
    exact_per_query = exact_timing.best / len(exact_queries)
    faiss_per_query = faiss_timing.best / len(queries)
    print(
        f"  exact {exact_timing.best:.2f} s / {len(exact_queries)} queries, "
        f"faiss {faiss_timing.best:.3f} s / {len(queries)} queries",
        flush=True,
    )

    overlap = [
        len(set(a.tolist()) & set(b.tolist())) / k
        for a, b in zip(approximate.indices[: len(exact_queries)], exact.indices)
    ]
    recall = float(np.mean(overlap))
    copies = {key: (value - rss["start"]) / gallery_bytes for key, value in rss.items()}
    rows = [
        {
            "step": "generate gallery (caller's array)",
            "seconds": generate_s,
            "rss_bytes": rss["gallery_generated"] - rss["start"],
            "gallery_copies": copies["gallery_generated"],
        },
        {
            "step": "RetrievalIndex(ids, gallery, copy=False)",
            "seconds": construct_s,
            "rss_bytes": rss["index_constructed"] - rss["start"],
            "gallery_copies": copies["index_constructed"],
            "peak_increase_bytes": construct_memory.delta_bytes,
        },
        {
            "step": "caller drops its array",
            "seconds": 0.0,
            "rss_bytes": rss["caller_array_dropped"] - rss["start"],
            "gallery_copies": copies["caller_array_dropped"],
        },
        {
            "step": f"build_faiss_index({factory!r})",
            "seconds": build_s,
            "rss_bytes": rss["faiss_built"] - rss["start"],
            "gallery_copies": copies["faiss_built"],
            "peak_increase_bytes": build_memory.delta_bytes,
        },
    ]
    searches = [
        {
            "method": f"exact (RetrievalIndex, {len(exact_queries)} queries)",
            "seconds": exact_timing.best,
            "ms_per_query": 1000 * exact_per_query,
            "recall@k": 1.0,
        },
        {
            "method": f"faiss {factory} ({len(queries)} queries)",
            "seconds": faiss_timing.best,
            "ms_per_query": 1000 * faiss_per_query,
            "recall@k": recall,
            "peak_increase_bytes": search_memory.delta_bytes,
        },
    ]
    for row in searches:
        row["time_vs_exact"] = ratio(row["ms_per_query"], 1000 * exact_per_query)

    index_copy = copies["index_constructed"] - copies["gallery_generated"]
    faiss_copy = copies["faiss_built"] - copies["caller_array_dropped"]
    peak_during_build = (rss["caller_array_dropped"] - rss["start"] + build_memory.delta_bytes) / gallery_bytes
    report.add_check("faiss_results_are_gallery_videos", bool((approximate.indices >= 0).all()))
    report.add_target(f"faiss_recall@{k}", recall, ">= 0.95", recall >= 0.95)
    report.add_target(
        "faiss_time_vs_exact",
        ratio(faiss_per_query, exact_per_query),
        "< 1 (faster than exact)",
        faiss_per_query < exact_per_query,
    )
    # Ids and their lookup dict add a few per cent of a gallery; 1.15 still means one copy.
    report.add_target(
        "gallery_copies_made_by_index_and_faiss", index_copy + faiss_copy, "<= 1", index_copy + faiss_copy <= 1.15
    )
    report.results["faiss"] = {
        "memory_steps": rows,
        "searches": searches,
        "gallery_bytes": gallery_bytes,
        "copies_made_by_RetrievalIndex": index_copy,
        "copies_added_by_faiss_build": faiss_copy,
        "peak_copies_during_faiss_build": peak_during_build,
        "recall@k": recall,
        "time_vs_exact": ratio(faiss_per_query, exact_per_query),
        "build_s": build_s,
        "build_kwargs": build_kwargs,
        "faiss_config": index.faiss_config,
        "faiss_threads": faiss.omp_get_max_threads(),
        "data": "clustered" if args.faiss_clusters > 0 else "uniform random",
    }
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns 0 when our rankings equal the baselines', 1 otherwise."""
    args = parse_benchmark_args(build_parser(), argv, QUICK)
    args.exact_queries = min(args.exact_queries, args.faiss_queries)
    args.faiss_flat = importlib.util.find_spec("faiss") is not None  # the FAISS flat row of part 1
    started = time.perf_counter()
    report = BenchmarkReport("retrieval", command_line("scripts/bench/retrieval.py", argv), settings_of(args))
    print(f"torch threads {torch.get_num_threads()}, {report.machine['cpu_model']}", flush=True)

    if not args.skip_exact:
        exact_rows = bench_exact(args, report)
        print(
            "\n"
            + format_table(
                exact_rows,
                {
                    "method": "method",
                    "best_s": "best s",
                    "median_s": "median s",
                    "vs_bare_product": "x bare product",
                    "speedup_vs_official": "speed-up vs official",
                    "peak_memory_bytes": "peak memory (RSS increase)",
                },
            )
        )
    if not args.skip_faiss and importlib.util.find_spec("faiss") is None:
        print("\nFAISS part skipped: faiss is not installed (pip install 'tfcovr[faiss]')")
        report.results["faiss"] = {"skipped": "faiss is not installed"}
    elif not args.skip_faiss:
        release_memory()
        bench_faiss(args, report)
        print(
            "\n"
            + format_table(
                report.results["faiss"]["memory_steps"],
                {
                    "step": "step",
                    "seconds": "s",
                    "rss_bytes": "RSS above start",
                    "gallery_copies": "gallery copies",
                    "peak_increase_bytes": "peak increase during step",
                },
            )
        )
        print(
            "\n"
            + format_table(
                report.results["faiss"]["searches"],
                {
                    "method": "search",
                    "seconds": "s",
                    "ms_per_query": "ms/query",
                    "time_vs_exact": "x exact",
                    "recall@k": f"recall@{args.top_k}",
                },
            )
        )

    return report.finish(args.output, started)


if __name__ == "__main__":
    sys.exit(main())
