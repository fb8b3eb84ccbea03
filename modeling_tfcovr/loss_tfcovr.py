"""The training loss of TF-CoVR's stage 2: hard-negative NCE over both directions, and the gather of
the global batch's features across processes.

HN-NCE (Radenovic et al., arXiv 2301.02280) with similarities `s_ij = q_i . t_j / temperature`: the
query-to-target term of row `i` is

    -s_ii + log(alpha * exp(s_ii) + sum_{j != i} w_ij * exp(s_ij)),
    w_ij = (B - 1) * exp(beta * s_ij) / sum_{k != i} exp(beta * s_ik),

averaged over the batch; the target-to-query term is the same on the transposed matrix, and the loss
is their sum. `alpha=1, beta=0` is symmetric InfoNCE.

Two variants (`TFCoVRConfig.hn_nce_variant`):

- `"paper"` (default): the formula above, computed in log space (`logsumexp`), stable at any temperature.
- `"official"`: the `HardNegativeNCE` of the official TF-CoVR code (shared with lucas-ventura/CoVR),
  operation for operation. Its query-to-target weights divide by a per-row sum taken without
  `keepdim`, so broadcasting divides column `j` by row `j`'s sum, `sum_{k != j} exp(beta * s_jk)`,
  instead of row `i`'s; the target-to-query weights are per column, as in the paper. With `beta = 0`
  both variants are equal; at `beta = 0.5` (the official setting) the loss differs by up to ~0.1 at
  batch 2 and ~5e-5 at batch 512, the gradients by more (README, "HN-NCE").
"""

from __future__ import annotations

import torch

HN_NCE_VARIANTS = ("paper", "official")


def hn_nce_loss(
    query_embeds: torch.Tensor,
    target_embeds: torch.Tensor,
    temperature: float = 0.07,
    alpha: float = 1.0,
    beta: float = 0.5,
    variant: str = "paper",
) -> torch.Tensor:
    """HN-NCE of L2-normalised `query_embeds` and `target_embeds` `(batch_size, dim)`; row `i` of the targets
    is query `i`'s positive, every other row a negative. Returns a scalar tensor."""
    if query_embeds.shape != target_embeds.shape:
        raise ValueError(
            f"query and target embeddings must have the same shape, got {query_embeds.shape} and {target_embeds.shape}"
        )
    return hn_nce_loss_from_logits(query_embeds.float() @ target_embeds.float().T / temperature, alpha, beta, variant)


def hn_nce_loss_from_logits(
    logits: torch.Tensor, alpha: float = 1.0, beta: float = 0.5, variant: str = "paper"
) -> torch.Tensor:
    """HN-NCE of a square matrix of similarities already divided by the temperature (`logits[i, j] = s_ij`)."""
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"HN-NCE needs a square (batch, batch) similarity matrix, got {tuple(logits.shape)}")
    if variant == "paper":
        return _paper_direction(logits, alpha, beta) + _paper_direction(logits.T, alpha, beta)
    if variant == "official":
        return _official_hn_nce(logits.float(), alpha, beta)
    raise ValueError(f"unknown HN-NCE variant {variant!r}; choose one of {HN_NCE_VARIANTS}")


def _paper_direction(similarities: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    batch_size = similarities.shape[0]
    positives = similarities.diagonal()
    log_alpha = torch.log(torch.tensor(alpha, dtype=similarities.dtype, device=similarities.device))
    if batch_size == 1:  # no negatives: the denominator is alpha * exp(s_11)
        return log_alpha + 0.0 * positives.sum()
    diagonal = torch.eye(batch_size, dtype=torch.bool, device=similarities.device)
    # log w_ij = log(B - 1) + beta * s_ij - logsumexp_{k != i}(beta * s_ik); the diagonal weight is alpha.
    scaled = (beta * similarities).masked_fill(diagonal, float("-inf"))
    log_weights = torch.log(torch.tensor(batch_size - 1.0)) + scaled - scaled.logsumexp(dim=1, keepdim=True)
    log_weights = torch.where(diagonal, log_alpha, log_weights)
    denominators = (similarities + log_weights).logsumexp(dim=1)
    return (denominators - positives).mean()


def _official_hn_nce(similarities: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    # The official operations in their order, each exp computed where the official code computes it (not shared,
    # not logsumexp), so that the loss and its gradients are the same bit for bit.
    batch_size = similarities.shape[0]
    positives = torch.diagonal(similarities)
    scaled = beta * similarities
    # sum(dim=1) has shape (B,): broadcasting divides column j by row j's sum (the official quirk).
    weights_q2t = (
        (batch_size - 1) * torch.exp(scaled) / (torch.exp(scaled).sum(dim=1) - torch.exp(torch.diagonal(scaled)))
    )
    weights_t2q = (
        (batch_size - 1) * torch.exp(scaled) / (torch.exp(scaled).sum(dim=0) - torch.exp(torch.diagonal(scaled)))
    )
    weights_q2t[range(batch_size), range(batch_size)] = alpha
    weights_t2q[range(batch_size), range(batch_size)] = alpha
    denominator_q2t = torch.log((torch.exp(similarities) * weights_q2t).sum(dim=1))
    denominator_t2q = torch.log((torch.exp(similarities) * weights_t2q).sum(dim=0))
    return (denominator_q2t - positives).mean() + (denominator_t2q - positives).mean()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradient of every process and returns this process's part.

    Written with all_reduce (not reduce_scatter) so that it also runs on the gloo backend.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        world_size = torch.distributed.get_world_size()
        ctx.rank, ctx.batch_sizes = torch.distributed.get_rank(), None
        sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world_size)]
        torch.distributed.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
        ctx.batch_sizes = [int(size) for size in sizes]
        max_size = max(ctx.batch_sizes)
        padded = torch.zeros((max_size, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
        padded[: tensor.shape[0]] = tensor
        gathered = [torch.empty_like(padded) for _ in range(world_size)]
        torch.distributed.all_gather(gathered, padded.contiguous())
        return torch.cat([part[:size] for part, size in zip(gathered, ctx.batch_sizes)])

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        grad = grad_output.contiguous().clone()
        torch.distributed.all_reduce(grad)
        start = sum(ctx.batch_sizes[: ctx.rank])
        return grad[start : start + ctx.batch_sizes[ctx.rank]]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenates `tensor` (B_p, ...) of every process along dim 0, keeping gradients.

    Every process then computes the loss of the global batch; since each one back-propagates the
    same loss, the summed gradient equals the single-process gradient times the world size, which
    DDP's gradient averaging cancels. Identity outside distributed runs.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return tensor
    if torch.distributed.get_world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


__all__ = ["HN_NCE_VARIANTS", "gather_with_grad", "hn_nce_loss", "hn_nce_loss_from_logits"]
