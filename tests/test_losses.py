import pytest
import torch

from s2v_lib.losses import DIRECTION_ONLY, LOSSES, get_loss, infonce_l2, infonce_l2_normalized, pairwise_l2


def test_pairwise_l2_matches_cdist_and_has_finite_gradient_at_zero():
    a, v = torch.randn(5, 7), torch.randn(6, 7)
    assert torch.allclose(pairwise_l2(a, v), torch.cdist(a, v), atol=1e-4)
    x = torch.randn(3, 4, requires_grad=True)
    pairwise_l2(x, x.detach()).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_prefers_matched_pairs(name):
    torch.manual_seed(0)
    v = torch.randn(16, 8) * 3
    loss = get_loss(name)
    assert loss(v + 0.01 * torch.randn_like(v), v) < loss(v[torch.randperm(16)], v)


@pytest.mark.parametrize("name", list(LOSSES))
def test_a_gradient_step_from_random_embeddings_improves_what_each_loss_aligns(name):
    torch.manual_seed(0)
    v = torch.randn(16, 8) * 3
    a = torch.randn(16, 8, requires_grad=True)
    get_loss(name)(a, v).backward()
    with torch.no_grad():
        a2 = a - 0.5 * a.grad / a.grad.norm(dim=1, keepdim=True).clamp_min(1e-9)
    if name in DIRECTION_ONLY:  # these align directions only
        cos = torch.nn.functional.cosine_similarity
        assert cos(a2, v).mean() > cos(a.detach(), v).mean()
    else:
        assert (a2 - v).norm(dim=1).mean() < (a.detach() - v).norm(dim=1).mean()


def test_infonce_l2_pushes_an_embedding_that_sits_on_its_anchor_outward_where_regression_stops():
    """What the paper's loss does (measured in notebook 06): it orders distances; it has no minimum at a_i = v_i."""
    torch.manual_seed(0)
    v = torch.randn(32, 8) * 3
    v = v - v.mean(0)  # anchors centred, as the toy image encoder's standardised embeddings are
    for name, moves in (("infonce_l2", True), ("mse", False), ("l1", False)):
        a = v.clone().requires_grad_(True)
        get_loss(name)(a, v).backward()
        grad = a.grad if a.grad is not None else torch.zeros_like(a)
        if not moves:
            assert grad.abs().max() < 1e-6, name  # regression is at its minimum
            continue
        a2 = (a - 0.5 * grad / grad.norm(dim=1, keepdim=True)).detach()
        assert (a2 - v).norm(dim=1).min() > 0.1  # every embedding leaves its anchor
        assert a2.norm(dim=1).mean() > v.norm(dim=1).mean()  # outward: longer than the anchors


def test_cosine_infonce_uses_the_authors_scale_1_and_keeps_the_clip_temperature_as_a_variant():
    a, v = torch.randn(10, 6), torch.randn(10, 6)
    cos = torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(v, dim=1).T
    target = torch.arange(10)
    ce = lambda logits: 0.5 * (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target))  # noqa: E731
    assert torch.isclose(get_loss("infonce_cosine")(a, v), ce(cos))
    assert torch.isclose(get_loss("infonce_cosine_tau0.1")(a, v), ce(cos / 0.1))


def test_infonce_l2_is_symmetric_and_normalised_variant_ignores_scale():
    a, v = torch.randn(10, 6), torch.randn(10, 6)
    assert torch.isclose(infonce_l2(a, v), infonce_l2(v, a))
    assert torch.isclose(infonce_l2_normalized(a, v), infonce_l2_normalized(5 * a, 0.2 * v), atol=1e-5)
    assert not torch.isclose(infonce_l2(a, v), infonce_l2(5 * a, 0.2 * v))  # the raw one sees the scale


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("hinge")
