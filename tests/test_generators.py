import numpy as np
import pytest
import torch

from s2v_lib import toyworld as tw
from s2v_lib.generators import ToyDiffusionGenerator, ToyGAN
from s2v_lib.registry import load_generator, load_image_encoder, load_judge


@pytest.mark.parametrize("gen", [ToyDiffusionGenerator(block_out_channels=(32, 32, 32)), ToyGAN(width=32)])
def test_generate_shapes_seeds_and_diversity(gen):
    e = torch.randn(3, 128)
    a = gen.generate(e, n=2, seed=0, **({"steps": 3} if isinstance(gen, ToyDiffusionGenerator) else {}))
    b = gen.generate(e, n=2, seed=0, **({"steps": 3} if isinstance(gen, ToyDiffusionGenerator) else {}))
    assert a.shape == (3, 2, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)  # same seed, same pictures
    assert not np.array_equal(a[:, 0], a[:, 1])  # different noise, different pictures


@pytest.mark.parametrize("name", ["toy-diffusion", "toy-gan"])
def test_nan_embeddings_are_refused(name):
    gen = load_generator(name)
    e = torch.zeros(2, 128)
    e[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        gen.generate(e)
    with pytest.raises(ValueError, match="shape"):
        gen.generate(torch.zeros(2, 64))


@pytest.mark.parametrize("name", ["toy-diffusion", "toy-gan"])
def test_shipped_generators_draw_the_object_of_the_embedded_frame(name):
    """Oracle behaviour: embed a clean picture of each category, generate, and ask the judge what it sees."""
    enc, gen, judge = load_image_encoder("toy"), load_generator(name), load_judge()
    frames = np.stack([tw.render_object(c, 6.0, 0.55, seed=c) for c in range(tw.N_CATEGORIES)])
    images = gen.generate(enc.encode(frames), n=2, seed=0)
    probs = judge.judge(images)["probs"]  # [C, 2, C]
    recognised = probs[np.arange(tw.N_CATEGORIES), :, np.arange(tw.N_CATEGORIES)] >= 0.5
    assert recognised.mean() >= 0.75
