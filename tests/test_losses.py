import pytest
import torch

from s2v_lib.losses import LOSSES, get_loss, infonce_l2, infonce_l2_normalized, pairwise_l2


def test_pairwise_l2_matches_cdist_and_has_finite_gradient_at_zero():
    a, v = torch.randn(5, 7), torch.randn(6, 7)
    assert torch.allclose(pairwise_l2(a, v), torch.cdist(a, v), atol=1e-4)
    x = torch.randn(3, 4, requires_grad=True)
    pairwise_l2(x, x.detach()).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_prefers_matched_pairs_and_a_step_pulls_audio_onto_its_anchor(name):
    torch.manual_seed(0)
    v = torch.randn(16, 8) * 3
    loss = get_loss(name)
    assert loss(v + 0.01 * torch.randn_like(v), v) < loss(v[torch.randperm(16)], v)
    a = torch.randn(16, 8, requires_grad=True)
    before = (a - v).norm(dim=1)
    loss(a, v).backward()
    with torch.no_grad():
        a2 = a - 0.5 * a.grad / a.grad.norm(dim=1, keepdim=True).clamp_min(1e-9)
    if name in ("infonce_l2_normalized", "infonce_cosine"):  # these align directions only
        cos = torch.nn.functional.cosine_similarity
        assert cos(a2, v).mean() > cos(a.detach(), v).mean()
    else:
        assert (a2 - v).norm(dim=1).mean() < before.mean()


def test_infonce_l2_is_symmetric_and_normalised_variant_ignores_scale():
    a, v = torch.randn(10, 6), torch.randn(10, 6)
    assert torch.isclose(infonce_l2(a, v), infonce_l2(v, a))
    assert torch.isclose(infonce_l2_normalized(a, v), infonce_l2_normalized(5 * a, 0.2 * v), atol=1e-5)
    assert not torch.isclose(infonce_l2(a, v), infonce_l2(5 * a, 0.2 * v))  # the raw one sees the scale


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("hinge")
