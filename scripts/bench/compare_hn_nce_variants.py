"""Measures how far the official TF-CoVR HN-NCE (`variant="official"`) is from the paper's formula (`"paper"`)
at beta = 0.5: the largest loss difference and the largest per-row relative difference of the query gradients,
over random 768-d batches whose targets are noisy copies of their queries.

    python scripts/bench/compare_hn_nce_variants.py --batch-sizes 2 8 64 512 --seeds 20
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from modeling_tfcovr import hn_nce_loss


def compare(batch_size: int, seeds: int, dim: int = 768, beta: float = 0.5) -> tuple[float, float]:
    worst_loss = worst_gradient = 0.0
    for seed in range(seeds):
        generator = torch.Generator().manual_seed(seed)
        queries = F.normalize(torch.randn(batch_size, dim, generator=generator), dim=-1)
        targets = F.normalize(queries + torch.randn(batch_size, dim, generator=generator), dim=-1)
        losses, gradients = {}, {}
        for variant in ("paper", "official"):
            leaf = queries.clone().requires_grad_()
            loss = hn_nce_loss(leaf, targets, 0.07, 1.0, beta, variant=variant)
            loss.backward()
            losses[variant], gradients[variant] = loss.item(), leaf.grad
        worst_loss = max(worst_loss, abs(losses["paper"] - losses["official"]))
        relative = (gradients["paper"] - gradients["official"]).norm(dim=1) / gradients["paper"].norm(dim=1)
        worst_gradient = max(worst_gradient, relative.max().item())
    return worst_loss, worst_gradient


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 8, 64, 512])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args(argv)
    print("| batch | max loss difference | max relative gradient difference (per query) |")
    print("|---|---|---|")
    for batch_size in args.batch_sizes:
        loss, gradient = compare(batch_size, args.seeds)
        print(f"| {batch_size} | {loss:.3g} | {gradient:.3g} |")


if __name__ == "__main__":
    main()
