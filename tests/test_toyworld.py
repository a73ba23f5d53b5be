import numpy as np
import pytest

from s2v_lib import toyworld as tw


def test_same_seed_same_clip_and_different_seed_differs():
    a, b, c = tw.make_clip(3, 5), tw.make_clip(3, 5), tw.make_clip(4, 5)
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)


def test_categories_have_distinct_shapes_colours_and_sounds():
    assert tw.N_CATEGORIES >= 8
    assert len({c.shape for c in tw.CATEGORIES}) == tw.N_CATEGORIES
    hues = sorted(c.hue for c in tw.CATEGORIES)
    assert min(np.diff(hues)) >= 0.07  # colours are apart on the hue circle
    spectra = []
    for cat in range(tw.N_CATEGORIES):
        x = tw.synth_source(cat, 0.5, -10, 1, np.random.default_rng(0))
        spectra.append(np.abs(np.fft.rfft(x))[:8000] / np.abs(np.fft.rfft(x))[:8000].sum())
    sims = np.array([[np.minimum(p, q).sum() for q in spectra] for p in spectra])
    assert (sims[~np.eye(len(sims), dtype=bool)] < 0.8).all()  # no two sounds share most of their spectrum


def _object_pixels(clip: tw.Clip) -> tuple[float, float]:
    """(area per object copy in pixels, mean lightness) of the sounding object as *rendered*, read from the frame's
    pixels alone: objects are saturated (0.95), backgrounds and walls are not (<= 0.25)."""
    import colorsys

    f = int(np.flatnonzero(clip.visible)[0])
    rgb = clip.frames[f].reshape(-1, 3) / 255.0
    hls = np.array([colorsys.rgb_to_hls(*px) for px in rgb])
    obj = hls[:, 2] > 0.6
    return obj.sum() / clip.sources[0].n_events, float(hls[obj, 1].mean())


def test_louder_sources_are_drawn_bigger_and_higher_pitch_lighter():
    """The ties are in the pictures, not only in the ground-truth numbers: measured on rendered pixels."""
    from s2v_lib.metrics import spearman

    clips = [tw.make_clip(1, i, tw.WorldConfig(p_distractor=0.0, p_always_visible=1.0)) for i in range(60)]
    area, light = np.array([_object_pixels(c) for c in clips]).T
    loud = np.array([c.sources[0].loudness_db for c in clips])
    pitch = np.array([c.sources[0].pitch for c in clips])
    assert spearman(loud, area) > 0.8
    assert spearman(pitch, light) > 0.8


def test_every_clip_renders_within_full_scale_mixtures_included():
    """Real recordings never exceed +-1 (and the authors clip there): the toy world's loudest drums and two-source
    mixtures stay inside too, without any clipping in the renderer."""
    from multiprocessing import get_context

    with get_context("fork").Pool(2) as pool:
        peaks = pool.map(_peak, [(21, i) for i in range(1500)])
    peaks = np.array(peaks)
    assert peaks[:, 0].max() < 1.0, peaks[:, 0].max()
    assert (peaks[:, 1] == 2).sum() > 500  # the mixtures were there
    assert peaks[:, 0].max() > 0.3  # and the loud clips: a full-scale check of quiet clips would say nothing


def _peak(args):
    clip = tw.make_clip(*args, tw.WorldConfig(p_mixture=0.5))
    return float(np.abs(clip.audio).max()), len(clip.sources)


def test_audio_level_follows_loudness_above_a_constant_floor():
    quiet, loud = (tw.synth_source(0, 0.5, db, 1, np.random.default_rng(0)) for db in tw.LOUDNESS_RANGE_DB)
    assert np.sqrt(np.mean(loud**2)) > 4 * np.sqrt(np.mean(quiet**2))
    floors = [np.sqrt(np.mean(tw.noise_floor(np.random.default_rng(s)) ** 2)) for s in range(3)]
    assert np.allclose(floors, 10 ** (tw.NOISE_FLOOR_DB / 20), rtol=1e-3)


def test_number_of_events_is_number_of_objects():
    for i in range(30):
        clip = tw.make_clip(2, i)
        src = clip.sources[0]
        for f in np.flatnonzero(src.visible):
            assert len(src.boxes[f]) == src.n_events


def test_middle_frame_often_misses_the_source():
    clips = [tw.make_clip(0, i) for i in range(300)]
    missed = np.mean([not c.visible[tw.N_FRAMES // 2] for c in clips])
    assert missed >= 0.30
    assert all(c.visible.any() for c in clips)  # but every clip shows its source somewhere
    assert np.mean([any(d) for c in clips for d in c.distractors]) > 0.2  # silent distractors appear


def test_hidden_frames_really_hide_the_source_colour():
    clip = next(c for c in (tw.make_clip(5, i, tw.WorldConfig(p_distractor=0)) for i in range(50)) if not c.visible.all())
    rgb = tw.category_rgb(clip.category, clip.sources[0].shade) * 255
    dist = np.abs(clip.frames.astype(float) - rgb).sum(-1).min(axis=(1, 2))  # closest pixel to the object colour
    assert (dist[~clip.visible] > 30).all() and (dist[clip.visible] < 10).all()


def test_mixture_has_two_sounding_sources_and_frame_targets():
    clip = tw.make_clip(0, 1, tw.WorldConfig(p_mixture=1.0))
    assert len(clip.sources) == 2 and clip.sources[0].category != clip.sources[1].category
    t = tw.frame_targets(clip, int(np.flatnonzero(clip.sources[0].visible)[0]))
    assert t.shape == (4, tw.N_CATEGORIES) and t[0, clip.sources[0].category] == 1


def test_bad_input_worlds():
    never = tw.make_clip(0, 0, tw.WorldConfig(never_visible=True))
    assert not never.visible.any()
    silent = tw.make_clip(0, 0, tw.WorldConfig(silent=True))
    assert np.sqrt(np.mean(silent.audio**2)) == pytest.approx(10 ** (tw.NOISE_FLOOR_DB / 20), rel=1e-2)
    single = tw.make_clip(0, 0, tw.WorldConfig(n_frames=1))
    assert single.frames.shape[0] == 1


def test_unknown_category_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown toy category"):
        tw.category_index("unicorn")
