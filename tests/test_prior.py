"""Priors (s2v_lib.prior): each does what it says on problems whose answer is known, and refuses what does not fit."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from s2v_lib import prior as pr

ID = {"profile": "toy", "audio_encoder": "sha256:aaaa", "image_encoder": "toy:bbbb"}


def _affine_problem(n=300, da=8, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    w, b = torch.randn(da, d, generator=g), torch.randn(d, generator=g) * 3
    x = torch.randn(n, da, generator=g) * 2 + 1
    return x, x @ w + b, w, b


def test_affine_prior_recovers_a_known_affine_map_between_different_dimensions():
    x, y, w, b = _affine_problem()
    p = pr.fit_prior("affine", x, y, ridge=1e-9, **ID)
    x_new = torch.randn(20, x.shape[1], generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(p(x_new).double(), x_new.double() @ w.double() + b.double(), atol=1e-4, rtol=1e-4)
    assert p.sample(x_new, n=3).shape == (20, 3, 6) and p.deterministic
    # a strong ridge shrinks the map towards the mean image embedding: the fit really depends on the setting
    flat = pr.fit_prior("affine", x, y, ridge=1e6, **ID)(x_new)
    assert (flat - y.mean(0)).norm(dim=1).max() < 0.05 * (p(x_new) - y.mean(0)).norm(dim=1).mean()


def test_retrieval_prior_returns_training_image_embeddings():
    g = torch.Generator().manual_seed(0)
    audio, image = torch.randn(50, 8, generator=g), torch.randn(50, 8, generator=g) + 5
    snap = pr.fit_prior("retrieval", audio, image, k=1, **ID)  # match by audio: a training sound gets its own frame
    torch.testing.assert_close(snap(audio), image)
    query = audio[:10] + 0.01 * torch.randn(10, 8, generator=g)
    torch.testing.assert_close(snap(query), image[:10])
    # match="image": the training image embedding nearest to the query itself
    by_image = pr.fit_prior("retrieval", audio, image, k=1, match="image", **ID)(image[5:7] + 0.01)
    torch.testing.assert_close(by_image, image[5:7])
    # pick="random" among k: every sample is one of the k nearest clips' image embeddings, and they differ
    rand = pr.fit_prior("retrieval", audio, image, k=5, pick="random", **ID)
    s = rand.sample(audio[:4], n=16, seed=3)
    near = torch.cdist(audio[:4], audio).topk(5, largest=False).indices
    for i in range(4):
        d = torch.cdist(s[i], image[near[i]])
        assert (d.min(1).values < 1e-5).all()
        assert len(torch.unique(d.argmin(1))) > 1
    # blend=0.5: halfway between the input and the retrieved embedding
    half = pr.fit_prior("retrieval", audio, image, k=1, blend=0.5, **ID)(audio[:3])
    torch.testing.assert_close(half, 0.5 * audio[:3] + 0.5 * image[:3])


def test_diffusion_prior_samples_the_conditional_distribution_with_its_spread():
    """Four sound clusters, each with its own image cluster (a known linear map of the sound's centre plus a
    Gaussian spread sigma): samples must land on the right cluster, centred on its mean, with about its spread."""
    g = torch.Generator().manual_seed(0)
    d, k, n, sigma = 8, 4, 1024, 0.5
    centres_a = torch.randn(k, d, generator=g) * 2
    centres_v = centres_a @ (torch.randn(d, d, generator=g) / d**0.5) + 3.0
    label = torch.randint(0, k, (n,), generator=g)
    audio = centres_a[label] + 0.1 * torch.randn(n, d, generator=g)
    image = centres_v[label] + sigma * torch.randn(n, d, generator=g)
    p = pr.fit_prior("diffusion", audio, image, steps=800, hidden=128, depth=2, batch_size=128, guidance=1.0, **ID)
    s = p.sample(centres_a, n=64, seed=1)  # [k, 64, d]
    dist = torch.cdist(s.reshape(-1, d), centres_v).view(k, 64, k)
    assert (dist.argmin(-1) == torch.arange(k)[:, None]).float().mean() > 0.95
    between = torch.pdist(centres_v).min()
    assert ((s.mean(1) - centres_v).norm(dim=1) < 0.25 * between).all()  # moved to the conditional mean
    spread = s.std(1).mean()
    assert 0.5 * sigma < spread < 1.6 * sigma  # non-zero spread, of the right size
    assert not p.deterministic
    torch.testing.assert_close(p.sample(centres_a, 2, seed=4), p.sample(centres_a, 2, seed=4))  # seeded


def test_save_and_load_keep_each_prior_and_check_its_identity(tmp_path):
    x, y, *_ = _affine_problem(n=64)
    for name, kw in (("affine", {}), ("retrieval", {"k": 3}), ("diffusion", {"steps": 20, "hidden": 32, "depth": 1})):
        p = pr.fit_prior(name, x, y, **ID, **kw)
        path = pr.save_prior(p, tmp_path / f"{name}.safetensors", {"note": "test"})
        q = pr.load_prior(path, expected={**ID, "dim": 6, "audio_dim": 8})
        torch.testing.assert_close(q.sample(x[:5], 2, seed=7), p.sample(x[:5], 2, seed=7))
        assert q.info["note"] == "test" and q.info["settings"] == p.info["settings"]
    with pytest.raises(ValueError, match="profile 'toy', not 'full'") as err:
        pr.load_prior(tmp_path / "affine.safetensors", expected={"profile": "full"})
    assert "\n" not in str(err.value) and "affine.safetensors" in str(err.value)
    with pytest.raises(ValueError, match="audio_encoder 'sha256:aaaa', not 'sha256:cccc'"):
        pr.load_prior(tmp_path / "retrieval.safetensors", expected={"audio_encoder": "sha256:cccc", "dim": 6})
    with pytest.raises(ValueError, match="dim 6, not 1024"):
        pr.load_prior(tmp_path / "diffusion.safetensors", expected={"dim": 1024})


def test_bad_input_is_one_line_naming_what_does_not_match():
    x, y, *_ = _affine_problem(n=64)
    p = pr.fit_prior("affine", x, y, **ID)
    cases = [
        (lambda: p(torch.randn(3, 128)), "expects 8-d embeddings, got 128-d"),
        (lambda: p(torch.tensor([[float("nan")] * 8, [0.0] * 8])), r"rows \[0\] contain NaN"),
        (lambda: pr.fit_prior("affine", x, y[:10], **ID), "64 audio embeddings but 10 image embeddings"),
        (lambda: pr.fit_prior("unclip", x, y, **ID), "unknown prior 'unclip'"),
        (lambda: pr.fit_prior("affine", x, y, depth=3, **ID), r"no setting \['depth'\]"),
        (lambda: pr.fit_prior("retrieval", x, y, match="image", **ID), "one dimension, got 8 and 6"),
        (lambda: pr.fit_prior("diffusion", x.clone().fill_(float("inf")), y, **ID), "NaN or infinite"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            call()
        assert "\n" not in str(err.value)


def test_generate_with_prior_feeds_every_sample_to_the_generator():
    x, y, *_ = _affine_problem(n=64)
    p = pr.fit_prior("retrieval", x, y, k=4, pick="random", **ID)
    seen = []

    class Generator:  # any generator: embeds [B, D] -> uint8 [B, n, H, W, 3]
        def generate(self, embeds, n=1, seed=0):
            seen.append(embeds)
            return np.zeros((len(embeds), n, 4, 4, 3), np.uint8) + np.arange(len(embeds))[:, None, None, None, None]

    pics = pr.generate_with_prior(Generator(), p, x[:3], n=5, seed=2)
    assert pics.shape == (3, 5, 4, 4, 3)
    torch.testing.assert_close(seen[0].view(3, 5, -1), p.sample(x[:3], 5, seed=2))
    assert pics[2, 4, 0, 0, 0] == 14  # picture (sound 2, sample 4) is the generator's 15th


def test_fit_prior_for_variant_records_the_encoder_and_uses_what_the_generator_sees():
    from s2v_lib.audio_encoder import AudioEncoder

    torch.manual_seed(0)
    model = AudioEncoder()
    anchors = torch.randn(6, 128) * 3
    exp = SimpleNamespace(specs={"train": torch.randn(6, 1, 32, 16)}, training_pairs=lambda pairing: (None, anchors))
    v = SimpleNamespace(model=model, loss="infonce_cosine", pairing="middle")  # a direction-only loss
    p = pr.fit_prior_for_variant(exp, v, "retrieval")
    assert p.settings["k"] == 6  # never more neighbours than training pairs
    assert p.info["audio_encoder"] == pr.encoder_id(model) and p.info["image_encoder"].startswith("toy:")
    assert p.info["profile"] == "toy" and p.info["n_train"] == 6
    # rescaled to the anchors' mean norm, as experiment.generator_input does for direction-only losses
    torch.testing.assert_close(p.bank_audio.norm(dim=1), anchors.norm(dim=1).mean().expand(6))
    other = AudioEncoder()
    assert pr.encoder_id(other) != pr.encoder_id(model)
    with pytest.raises(ValueError, match="audio_encoder"):
        p.check_compatible(audio_encoder=pr.encoder_id(other))


def test_every_prior_works_in_the_full_profiles_1024_d_space():
    g = torch.Generator().manual_seed(0)
    audio, image = torch.randn(40, 1024, generator=g), torch.randn(40, 1024, generator=g)
    full = {"profile": "full", "audio_encoder": "sha256:dddd", "image_encoder": "openclip-vit-h-14:ViT-H-14/x"}
    for name, kw in (("affine", {}), ("retrieval", {"match": "image"}), ("diffusion", {"steps": 3, "hidden": 64})):
        p = pr.fit_prior(name, audio, image, **full, **kw)
        assert p.sample(audio[:3], n=2).shape == (3, 2, 1024) and torch.isfinite(p.sample(audio[:3])).all()
        with pytest.raises(ValueError, match="profile 'full', not 'toy'"):
            p.check_compatible(profile="toy", dim=1024)
        with pytest.raises(ValueError, match="expects 1024-d embeddings, got 128-d"):
            p(torch.randn(2, 128))
