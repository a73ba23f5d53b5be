"""Self-checks of the exercises: a right answer passes, the usual wrong ones are caught with a hint that does not give
the solution away, and a wrong type or shape gets a message saying what is expected (never a stack trace)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from s2v_lib import losses, selfcheck
from s2v_lib.data import build_toy_dataset
from s2v_lib.experiment import Experiment


def _said(capsys) -> str:
    return capsys.readouterr().out


def _infonce(a, v):
    d = torch.cdist(a, v)
    t = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(-d, t) + F.cross_entropy(-d.T, t))


# ----------------------------------------------------------------------------------------------------------------
# notebook 03


def test_distance_matrix(capsys):
    a, v = torch.randn(5, 3), torch.randn(5, 3)
    assert selfcheck.check_distance_matrix(torch.cdist(a, v), a, v)
    assert "Correct" in _said(capsys)
    assert not selfcheck.check_distance_matrix(torch.cdist(a, v).square(), a, v)
    assert "squared" in _said(capsys)
    assert not selfcheck.check_distance_matrix(torch.cdist(a, v).T, a, v)
    assert "transposed" in _said(capsys)
    assert not selfcheck.check_distance_matrix(torch.cdist(a, v)[:3], a, v)
    out = _said(capsys)
    assert "should have shape (5, 5)" in out and "Traceback" not in out
    assert not selfcheck.check_distance_matrix("D", a, v)
    assert "should be a tensor" in _said(capsys)


def test_infonce_l2_right_answers_pass(capsys):
    assert selfcheck.check_infonce_l2(_infonce)
    assert selfcheck.check_infonce_l2(losses.infonce_l2)
    assert _said(capsys).count("Correct") == 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda a, v: losses.symmetric_cross_entropy(torch.cdist(a, v)), "logits are -D"),
        (lambda a, v: F.cross_entropy(-torch.cdist(a, v), torch.arange(len(a))), "only one direction"),
        (lambda a, v: 2 * _infonce(a, v), "their mean"),
        (lambda a, v: _infonce(F.normalize(a, dim=1), F.normalize(v, dim=1)), "normalised"),
        (lambda a, v: losses.symmetric_cross_entropy(-torch.cdist(a, v).square()), "not its square"),
        (lambda a, v: len(a) * _infonce(a, v), "averaged"),
        (lambda a, v: losses.mse(a, v), "differs"),
    ],
)
def test_infonce_l2_wrong_answers_get_a_hint(capsys, wrong, hint):
    assert not selfcheck.check_infonce_l2(wrong)
    out = _said(capsys)
    assert out.startswith("Not yet") and hint in out, out
    assert "cross_entropy(-" not in out.replace("F.cross_entropy(logits", "")  # no solution code in the hint


def test_infonce_l2_bad_input_is_a_message(capsys):
    assert not selfcheck.check_infonce_l2(_infonce(torch.randn(4, 3), torch.randn(4, 3)))  # called instead of passed
    assert "pass your function itself" in _said(capsys)
    assert not selfcheck.check_infonce_l2(lambda a, v: torch.cdist(a, v))  # a matrix, not a scalar
    assert "one number" in _said(capsys)
    assert not selfcheck.check_infonce_l2(lambda a, v: _infonce(a, v).item())
    assert "torch tensor" in _said(capsys)
    assert not selfcheck.check_infonce_l2(lambda a, v: _infonce(a, v).detach())
    assert "no gradient" in _said(capsys)
    assert not selfcheck.check_infonce_l2(lambda a, v: a @ v)  # raises inside: reported, not raised
    out = _said(capsys)
    assert "raised RuntimeError" in out and "Traceback" not in out


@pytest.fixture(scope="module")
def tiny_exp():
    ds = build_toy_dataset(12, seed=123)
    train, rest = ds.split(4)
    val, test = rest.split(2)
    anchors = torch.randn(2, 128)
    return Experiment(train, val, test, {}, anchors, anchors, ssl_scores=np.random.default_rng(0).random((8, 8)))


def test_middle_anchors(capsys, tiny_exp):
    _, middle = tiny_exp.training_pairs("middle")
    assert selfcheck.check_middle_anchors(middle, tiny_exp)
    _, top1 = tiny_exp.training_pairs("top1")
    if not torch.allclose(top1, middle):
        assert not selfcheck.check_middle_anchors(top1, tiny_exp)
        assert "'top1' pairing" in _said(capsys)
    assert not selfcheck.check_middle_anchors(middle[:3], tiny_exp)
    assert "should have shape (8, 128)" in _said(capsys)
    assert not selfcheck.check_middle_anchors(middle, None)
    assert "prepare_experiment" in _said(capsys)


def test_per_category(capsys):
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    assert selfcheck.check_per_category([0.5, 1.0, 0.5], predicted, labels)
    assert not selfcheck.check_per_category([50, 100, 50], predicted, labels)
    assert "percentages" in _said(capsys)
    assert not selfcheck.check_per_category([4 / 6] * 3, predicted, labels)
    assert "overall" in _said(capsys)
    assert not selfcheck.check_per_category([0.5, 1.0], predicted, labels)
    assert "should have shape (3,)" in _said(capsys)


# ----------------------------------------------------------------------------------------------------------------
# notebook 04


def test_guidance(capsys):
    assert selfcheck.check_guidance(lambda c, u, w: u + w * (c - u))
    assert selfcheck.check_guidance(lambda c, u, w: w * c + (1 - w) * u)
    assert not selfcheck.check_guidance(lambda c, u, w: c + w * (u - c))
    assert "swapped" in _said(capsys).splitlines()[-1]
    assert not selfcheck.check_guidance(lambda c, u, w: (u + w * (c - u))[0])
    assert "same shape" in _said(capsys)


def test_ddim_sampler(capsys):
    from s2v_lib import registry
    from s2v_lib.generators import to_uint8

    gen = registry.load_generator("toy-diffusion")
    e = torch.randn(2, gen.emb_dim) * 3
    right = gen.generate(e, n=1, seed=3, steps=2, guidance=2.0)
    assert selfcheck.check_ddim_sampler(right, e, gen, seed=3, steps=2)
    assert selfcheck.check_ddim_sampler(right[:, 0], e, gen, seed=3, steps=2)
    float_pictures = torch.as_tensor(right[:, 0]).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert (to_uint8(float_pictures) == right[:, 0]).all()
    assert selfcheck.check_ddim_sampler(float_pictures, e, gen, seed=3, steps=2)
    assert not selfcheck.check_ddim_sampler(gen.generate(e, n=1, seed=4, steps=2)[:, 0], e, gen, seed=3, steps=2)
    assert "Not yet" in _said(capsys).splitlines()[-1]
    assert not selfcheck.check_ddim_sampler(right[:1, 0], e, gen, seed=3, steps=2)
    assert "expected your pictures as uint8 [2, 32, 32, 3]" in _said(capsys)


# ----------------------------------------------------------------------------------------------------------------
# notebook 07


def test_paper_frames(capsys):
    t = selfcheck._paper_frames()[1]
    assert t == 1 + (160_000 - 512) // (512 - 353)  # the front end is scipy's framing of 10 s at 16 kHz
    assert selfcheck.check_paper_frames(t)
    assert not selfcheck.check_paper_frames(t - 1)
    assert "off by one" in _said(capsys).splitlines()[-1]
    assert not selfcheck.check_paper_frames("1004")
    assert "a number" in _said(capsys)
    assert str(t) not in _said(capsys)


def test_cache_bytes(capsys):
    right = 300 * (160_000 * 2 + 1024 * 4 + 2)
    assert selfcheck.check_cache_bytes(right, 300)
    assert not selfcheck.check_cache_bytes(right * 8, 300)
    assert "bits" in _said(capsys).splitlines()[-1]
    assert not selfcheck.check_cache_bytes(300 * (160_000 * 4 + 1024 * 4 + 2), 300)
    assert "float16" in _said(capsys).splitlines()[-1]
    assert not selfcheck.check_cache_bytes(None, 300)
    assert "as a number" in _said(capsys)
