"""HN-NCE: the `"official"` variant against a literal reimplementation of the official `HardNegativeNCE`
(`src/model/blip/loss.py` in UCF-CRCV/TF-CoVR, shared with lucas-ventura/CoVR), loss and gradients bit for bit;
the `"paper"` variant against the paper's per-row formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modeling_tfcovr import TFCoVRConfig, TFCoVRModel, hn_nce_loss
from modeling_tfcovr.loss_tfcovr import hn_nce_loss_from_logits


def official_hard_negative_nce(video_embds, text_embds, temp, alpha, beta):
    """The official forward, transcribed from its definition."""
    batch_size = video_embds.size(0)
    sim_matrix = video_embds @ text_embds.T
    sim_matrix = sim_matrix / temp
    sim_matrix = sim_matrix.float()
    nominator = torch.diagonal(sim_matrix)
    beta_sim = beta * sim_matrix
    w_v2t = (
        (batch_size - 1) * torch.exp(beta_sim) / (torch.exp(beta_sim).sum(dim=1) - torch.exp(torch.diagonal(beta_sim)))
    )
    w_t2v = (
        (batch_size - 1) * torch.exp(beta_sim) / (torch.exp(beta_sim).sum(dim=0) - torch.exp(torch.diagonal(beta_sim)))
    )
    w_v2t[range(batch_size), range(batch_size)] = alpha
    w_t2v[range(batch_size), range(batch_size)] = alpha
    denominator_v2t = torch.log((torch.exp(sim_matrix) * w_v2t).sum(dim=1))
    denominator_t2v = torch.log((torch.exp(sim_matrix) * w_t2v).sum(dim=0))
    return (denominator_v2t - nominator).mean() + (denominator_t2v - nominator).mean()


def paper_hn_nce(q, t, temp, alpha, beta):
    """The HN-NCE paper's formula, element by element (per-row weights in both directions)."""
    s = (q.double() @ t.double().T) / temp
    batch = s.shape[0]

    def direction(m):
        total = 0.0
        for i in range(batch):
            negatives = [j for j in range(batch) if j != i]
            normaliser = sum(torch.exp(beta * m[i, k]) for k in negatives)
            denominator = alpha * torch.exp(m[i, i]) + sum(
                (batch - 1) * torch.exp(beta * m[i, j]) / normaliser * torch.exp(m[i, j]) for j in negatives
            )
            total = total + torch.log(denominator) - m[i, i]
        return total / batch

    return direction(s) + direction(s.T)


def embeddings(batch: int, dim: int = 16, seed: int = 0, spread: float = 1.0):
    generator = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(batch, dim, generator=generator), dim=-1)
    # targets close to their queries but with uneven rows, so that row sums differ and the quirk shows
    t = F.normalize(q + spread * torch.randn(batch, dim, generator=generator), dim=-1)
    return q, t


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 64])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.5), (1.0, 0.0), (0.8, 1.0), (1.0, 2.0)])
def test_official_variant_equals_the_official_loss_and_gradients_bit_for_bit(batch, alpha, beta):
    q, t = embeddings(batch, seed=batch)
    q_ours, t_ours = q.clone().requires_grad_(), t.clone().requires_grad_()
    q_ref, t_ref = q.clone().requires_grad_(), t.clone().requires_grad_()
    ours = hn_nce_loss(q_ours, t_ours, 0.07, alpha, beta, variant="official")
    reference = official_hard_negative_nce(q_ref, t_ref, 0.07, alpha, beta)
    if batch == 1:  # the official weights are 0/0 off the (absent) negatives, then replaced: still finite
        assert torch.isfinite(reference)
    assert torch.equal(ours, reference), (ours, reference)
    ours.backward()
    reference.backward()
    # exact equality, NaN included: at batch 1 the official 0/0 weights reach the backward pass, and at batch 2 with a
    # large beta the row sum minus its diagonal can cancel to 0
    torch.testing.assert_close(q_ours.grad, q_ref.grad, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(t_ours.grad, t_ref.grad, rtol=0, atol=0, equal_nan=True)
    if batch == 1:
        assert torch.isnan(q_ours.grad).all()


@pytest.mark.parametrize("batch", [2, 3, 8])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.5), (1.0, 0.0), (0.8, 1.0)])
def test_paper_variant_equals_the_per_row_formula(batch, alpha, beta):
    q, t = embeddings(batch, seed=batch + 10)
    ours = hn_nce_loss(q, t, 0.07, alpha, beta)
    assert ours.item() == pytest.approx(paper_hn_nce(q, t, 0.07, alpha, beta).item(), rel=1e-5, abs=1e-5)


def test_the_variants_agree_at_beta_zero_and_differ_at_the_official_beta():
    q, t = embeddings(6, seed=3)
    paper, official = (hn_nce_loss(q, t, 0.07, 1.0, 0.0, variant=v) for v in ("paper", "official"))
    assert official.item() == pytest.approx(paper.item(), rel=1e-6)
    paper, official = (hn_nce_loss(q, t, 0.07, 1.0, 0.5, variant=v) for v in ("paper", "official"))
    assert abs(official.item() - paper.item()) > 1e-3
    # the target-to-query direction is per column in both: the whole difference is in the query-to-target term
    logits = q @ t.T / 0.07
    difference_t2q = hn_nce_loss_from_logits(logits.T.contiguous(), 1.0, 0.5) - hn_nce_loss_from_logits(
        logits, 1.0, 0.5
    )
    assert difference_t2q.abs().item() < 1e-5


def test_the_model_trains_with_the_configured_variant():
    config = TFCoVRConfig(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=32,
            patch_size=16,
            num_frames=2,
        ),
        text_config=dict(
            model_type="clip_text_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            projection_dim=24,
            vocab_size=50,
            max_position_embeddings=16,
        ),
        embed_dim=32,
        combiner_projection_dim=16,
        combiner_hidden_dim=32,
        combiner_dropout=0.0,
        hn_nce_variant="official",
    )
    model = TFCoVRModel(config).eval()
    q, t = embeddings(5, dim=32, seed=4)
    text = torch.randn(5, 24, generator=torch.Generator().manual_seed(5))
    output = model(query_video_embeds=q, text_embeds=text, target_video_embeds=t)
    expected = official_hard_negative_nce(output.query_embeds, output.target_embeds, 0.07, 1.0, 0.5)
    assert torch.equal(output.loss, expected)
    with pytest.raises(ValueError, match="hn_nce_variant must be 'paper' or 'official'"):
        TFCoVRConfig(hn_nce_variant="keepdim")
