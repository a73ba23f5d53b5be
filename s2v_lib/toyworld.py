"""The toy audio-visual world: the course's embedded data set (DESIGN.md, "The toy world").

Sound2Vision learns from in-the-wild videos (paper guide, pipeline step 1). This module makes small procedural videos
with sound that have what no real data set has: exact ground truth. Every clip is a few 32x32 frames plus 2 s of
16 kHz mono audio, generated deterministically from ``(seed, index)``.

Ties between the modalities, so that the paper's claims can be *measured*:

* category   -> a distinct sound (hum, chirps, siren ...) and a distinct object (its own shape *and* colour);
* loudness   -> object size (a nearer source is louder and looks bigger);
* pitch      -> colour shade (low pitch = dark shade, high pitch = light shade);
* n_events   -> number of objects (three bursts of sound = three copies of the object).

Every clip renders within full scale ([-1, 1]), as a real recording does (the authors clip there), and carries the
same quiet ambient noise floor (the "room", -57 dBFS). The loudness cue does not depend on that floor: the paper's
front end measures power against a fixed absolute floor (``log(S + 1e-7)`` of a density, see ``s2v_lib.audio``),
so a louder clip stands further above it even after the per-clip z-score (``s2v control`` measures it).

To give frame selection something real to fix (paper guide step 2), the sounding object is off-screen or occluded in
some frames, and silent distractor objects of other categories wander in; the middle frame often misses the source.
Ground truth per clip and per frame: categories, attributes, boxes and visibility.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000
CLIP_SECONDS = 2.0
N_SAMPLES = int(SAMPLE_RATE * CLIP_SECONDS)
N_FRAMES = 8
IMAGE_SIZE = 32
# Levels (dBFS, RMS). The loudest source peaks ~19 dB above its RMS (a drum hit); with two sources at once and the
# floor, every clip stays below 0.8 of full scale (tests/test_toyworld.py checks thousands of clips).
NOISE_FLOOR_DB = -57.0  # RMS of the ambient floor; identical in every clip
LOUDNESS_RANGE_DB = (-39.0, -21.0)  # RMS of the source while it sounds
SIZE_RANGE = (2.6, 7.0)  # object "radius" in pixels at 32x32, tied to loudness
SUPERSAMPLE = 2


@dataclass(frozen=True)
class Category:
    """One kind of sound source: what it sounds like and what it looks like."""

    name: str
    sound: str
    shape: str
    hue: float  # 0..1


CATEGORIES: tuple[Category, ...] = (
    Category("hum", "harmonic hum", "circle", 0.00),  # red
    Category("engine", "pulsed engine", "ring", 0.08),  # orange
    Category("chirp", "bird chirps", "triangle", 0.16),  # yellow
    Category("drum", "percussive hits", "square", 0.33),  # green
    Category("wind", "filtered noise", "plus", 0.50),  # cyan
    Category("siren", "FM siren", "diamond", 0.62),  # blue
    Category("bell", "inharmonic bell", "bar", 0.76),  # purple
    Category("whistle", "vibrato whistle", "cross", 0.88),  # magenta
)
CATEGORY_NAMES = tuple(c.name for c in CATEGORIES)
N_CATEGORIES = len(CATEGORIES)


def category_index(name: str) -> int:
    try:
        return CATEGORY_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown toy category {name!r}; known: {', '.join(CATEGORY_NAMES)}") from None


@dataclass
class SourceTruth:
    """Ground truth of one sounding source in a clip."""

    category: int
    loudness_db: float  # RMS while sounding, dBFS
    pitch: float  # 0..1 (low..high)
    n_events: int  # 1..3 bursts = 1..3 objects
    size: float  # object radius in pixels as drawn (function of loudness, unless the clip is ambiguous)
    shade: float  # colour lightness 0..1 as drawn (function of pitch, unless the clip is ambiguous)
    events: list[tuple[float, float]] = field(default_factory=list)  # (start, duration) of each burst, seconds
    visible: list[bool] = field(default_factory=list)  # per frame: more than half of it in view
    boxes: list[list[tuple[float, float, float, float]]] = field(default_factory=list)  # per frame: visible boxes
    n_objects: int | None = None  # copies drawn (= n_events unless the clip is ambiguous, see WorldConfig)
    ambiguous: bool = False  # size, shade and count drawn independently of the sound (WorldConfig.ambiguity)

    def __post_init__(self):
        if self.n_objects is None:
            self.n_objects = self.n_events

    @property
    def name(self) -> str:
        return CATEGORIES[self.category].name


@dataclass
class Clip:
    """A toy video with sound and its ground truth."""

    audio: np.ndarray  # float32 [N_SAMPLES], 16 kHz mono
    frames: np.ndarray  # uint8 [N_FRAMES, 32, 32, 3]
    sources: list[SourceTruth]
    distractors: list[list[int]]  # per frame: categories of the silent objects in view
    seed: tuple[int, ...]
    distractor_attributes: dict[int, tuple[float, float]] = field(default_factory=dict)  # category -> (size, shade)

    @property
    def category(self) -> int:
        return self.sources[0].category

    @property
    def visible(self) -> np.ndarray:
        """Per frame: is the (first) sounding object in view?"""
        return np.array(self.sources[0].visible, dtype=bool)


# ----------------------------------------------------------------------------------------------------------------
# attribute <-> attribute maps (the cross-modal ties)


def loudness_to_size(loudness_db: float | np.ndarray) -> float | np.ndarray:
    lo, hi = LOUDNESS_RANGE_DB
    t = np.clip((np.asarray(loudness_db) - lo) / (hi - lo), 0.0, 1.0)
    return SIZE_RANGE[0] + t * (SIZE_RANGE[1] - SIZE_RANGE[0])


def size_to_loudness(size: float | np.ndarray) -> float | np.ndarray:
    lo, hi = LOUDNESS_RANGE_DB
    t = (np.asarray(size) - SIZE_RANGE[0]) / (SIZE_RANGE[1] - SIZE_RANGE[0])
    return lo + t * (hi - lo)


def pitch_to_shade(pitch: float | np.ndarray) -> float | np.ndarray:
    return 0.32 + 0.40 * np.clip(np.asarray(pitch), 0.0, 1.0)


def category_rgb(category: int, shade: float) -> np.ndarray:
    r, g, b = colorsys.hls_to_rgb(CATEGORIES[category].hue, float(shade), 0.95)
    return np.array([r, g, b], dtype=np.float32)


# ----------------------------------------------------------------------------------------------------------------
# sounds


def _event_times(rng: np.random.Generator, n_events: int) -> list[tuple[float, float]]:
    """Non-overlapping (start, duration) in seconds for n bursts inside the clip."""
    slot = CLIP_SECONDS / n_events
    out = []
    for k in range(n_events):
        dur = rng.uniform(0.45, 0.8) * slot
        start = k * slot + rng.uniform(0.05, 0.95) * (slot - dur)
        out.append((start, dur))
    return out


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)) + 1e-12))


def _burst(kind: str, pitch: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """One burst of sound of a category, n samples long, unit RMS."""
    t = np.arange(n) / SAMPLE_RATE
    if kind == "hum":
        f0 = 110 * 2 ** (1.5 * pitch)
        x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.28)) / k for k in range(1, 7))
    elif kind == "engine":
        rate = 18 + 30 * pitch
        carrier = 160 * 2 ** (1.2 * pitch)
        gate = (np.sin(2 * np.pi * rate * t) > 0.2).astype(np.float64)
        x = gate * (np.sign(np.sin(2 * np.pi * carrier * t)) * 0.6 + rng.normal(0, 0.3, n))
    elif kind == "chirp":
        x = np.zeros(n)
        period = int(0.11 * SAMPLE_RATE)
        length = int(0.06 * SAMPLE_RATE)
        f_lo = 2000 * 2 ** (1.2 * pitch)
        for s in range(0, max(n - length, 1), period):
            tt = np.arange(min(length, n - s)) / SAMPLE_RATE
            f = f_lo * (1 + 8 * tt)
            ph = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE
            x[s : s + len(tt)] += np.sin(ph) * np.hanning(len(tt))
    elif kind == "drum":
        x = np.zeros(n)
        period = int(0.16 * SAMPLE_RATE)
        f = 55 * 2 ** (1.5 * pitch)
        for s in range(0, n, period):
            tt = np.arange(n - s) / SAMPLE_RATE
            hit = np.exp(-tt * 28) * np.sin(2 * np.pi * f * tt) + 0.4 * np.exp(-tt * 90) * rng.normal(0, 1, len(tt))
            x[s:] += hit
    elif kind == "wind":
        spec = np.fft.rfft(rng.normal(0, 1, n))
        freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        fc = 400 * 2 ** (3.0 * pitch)
        spec *= np.exp(-0.5 * (np.log2(np.maximum(freqs, 1) / fc) / 0.35) ** 2)
        x = np.fft.irfft(spec, n) * (1 + 0.5 * np.sin(2 * np.pi * 1.5 * t + rng.uniform(0, 6.28)))
    elif kind == "siren":
        fc = 550 * 2 ** (1.2 * pitch)
        inst = fc * (1 + 0.25 * np.sin(2 * np.pi * 3.0 * t))
        x = np.sin(2 * np.pi * np.cumsum(inst) / SAMPLE_RATE)
    elif kind == "bell":
        x = np.zeros(n)
        f0 = 380 * 2 ** (1.3 * pitch)
        period = int(0.5 * SAMPLE_RATE)
        for s in range(0, n, period):
            tt = np.arange(n - s) / SAMPLE_RATE
            for ratio, amp, decay in ((1.0, 1.0, 4), (2.76, 0.6, 6), (5.40, 0.4, 9), (8.93, 0.25, 12)):
                x[s:] += amp * np.exp(-tt * decay) * np.sin(2 * np.pi * f0 * ratio * tt)
    elif kind == "whistle":
        fc = 1300 * 2 ** (1.2 * pitch)
        inst = fc * (1 + 0.03 * np.sin(2 * np.pi * 6.5 * t))
        x = np.sin(2 * np.pi * np.cumsum(inst) / SAMPLE_RATE)
    else:  # pragma: no cover - guarded by CATEGORIES
        raise ValueError(kind)
    x = np.asarray(x, dtype=np.float64)
    ramp = min(int(0.01 * SAMPLE_RATE), n // 2)
    if ramp > 0:
        env = np.ones(n)
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
        x = x * env
    return x / _rms(x)


def synth_source(category: int, pitch: float, loudness_db: float, n_events: int, rng: np.random.Generator,
                 events: list[tuple[float, float]] | None = None) -> np.ndarray:  # fmt: skip
    """The waveform of one sounding source: n_events bursts at the given RMS level (dBFS) while sounding, at the
    given ``events`` times ((start, duration) in seconds; drawn from ``rng`` when not given)."""
    out = np.zeros(N_SAMPLES)
    amp = 10 ** (loudness_db / 20)
    for start, dur in events if events is not None else _event_times(rng, n_events):
        s, n = int(start * SAMPLE_RATE), int(dur * SAMPLE_RATE)
        out[s : s + n] += amp * _burst(CATEGORIES[category].name, pitch, n, rng)
    return out


def noise_floor(rng: np.random.Generator) -> np.ndarray:
    """The ambient 'room' every clip shares: brownish noise at a fixed RMS level."""
    spec = np.fft.rfft(rng.normal(0, 1, N_SAMPLES))
    freqs = np.fft.rfftfreq(N_SAMPLES, 1 / SAMPLE_RATE)
    spec /= np.sqrt(np.maximum(freqs, 50.0) / 50.0)
    x = np.fft.irfft(spec, N_SAMPLES)
    return x / _rms(x) * 10 ** (NOISE_FLOOR_DB / 20)


# ----------------------------------------------------------------------------------------------------------------
# pictures

_GRID = (np.arange(IMAGE_SIZE * SUPERSAMPLE) + 0.5) / SUPERSAMPLE


def shape_mask(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    """Coverage in [0, 1] of a shape centred at (cx, cy) with radius r, on the 32x32 grid (anti-aliased)."""
    yy, xx = np.meshgrid(_GRID, _GRID, indexing="ij")
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        m = dx**2 + dy**2 <= r**2
    elif shape == "ring":
        d2 = dx**2 + dy**2
        m = (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    elif shape == "triangle":
        m = (dy <= 0.8 * r) & (dy >= -r + 2 * np.abs(dx) * 0.95)
    elif shape == "square":
        m = (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    elif shape == "plus":
        w = 0.38 * r
        m = ((np.abs(dx) <= w) & (np.abs(dy) <= r)) | ((np.abs(dy) <= w) & (np.abs(dx) <= r))
    elif shape == "diamond":
        m = np.abs(dx) + np.abs(dy) <= 1.15 * r
    elif shape == "bar":
        m = (np.abs(dx) <= 1.15 * r) & (np.abs(dy) <= 0.45 * r)
    elif shape == "cross":
        w = 0.30 * r * np.sqrt(2)
        m = ((np.abs(dx - dy) <= w) | (np.abs(dx + dy) <= w)) & (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    else:  # pragma: no cover
        raise ValueError(shape)
    m = m.astype(np.float32)
    return m.reshape(IMAGE_SIZE, SUPERSAMPLE, IMAGE_SIZE, SUPERSAMPLE).mean(axis=(1, 3))


def _background(rng: np.random.Generator) -> np.ndarray:
    """A muted two-tone scene (sky over ground) with texture; low saturation so objects stand out."""
    sky = np.array(colorsys.hls_to_rgb(rng.uniform(0, 1), rng.uniform(0.25, 0.6), rng.uniform(0.0, 0.2)))
    ground = np.array(colorsys.hls_to_rgb(rng.uniform(0, 1), rng.uniform(0.15, 0.45), rng.uniform(0.0, 0.25)))
    horizon = rng.uniform(12, 24)
    rows = np.arange(IMAGE_SIZE)[:, None, None]
    img = np.where(rows < horizon, sky, ground) * np.ones((IMAGE_SIZE, IMAGE_SIZE, 3))
    img += rng.normal(0, 0.025, (IMAGE_SIZE, IMAGE_SIZE, 1))
    return img.astype(np.float32)


def _paint(img: np.ndarray, mask: np.ndarray, rgb: np.ndarray) -> None:
    img[:] = img * (1 - mask[..., None]) + rgb * mask[..., None]


def _box(cx: float, cy: float, r: float) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in pixels, clipped to the image."""
    return (max(cx - r, 0.0), max(cy - r, 0.0), min(cx + r, IMAGE_SIZE), min(cy + r, IMAGE_SIZE))


# ----------------------------------------------------------------------------------------------------------------
# clips


@dataclass
class WorldConfig:
    """Knobs of the world. The defaults are the course's data set; tests shrink or break them on purpose."""

    n_frames: int = N_FRAMES
    p_always_visible: float = 0.15  # clips whose source is in view in every frame
    p_distractor: float = 0.6  # clips with a silent object of another category
    p_mixture: float = 0.0  # clips with two sounding sources
    never_visible: bool = False  # bad-input tests: the source is never in view
    silent: bool = False  # bad-input tests: no source sound at all
    # How much of a frame the sound does not determine: the share of *ambiguous* clips. In an ambiguous clip the
    # object's size, shade and count are drawn independently of the sound's loudness, pitch and event count, and (with
    # ``ambiguity_companion``) a silent companion object of another category stands in view whenever the source does.
    # Only the picture changes, from a separate random stream: the sound, and every clip at ambiguity 0, stay as they
    # are; the clips that are ambiguous at 0.5 are ambiguous, identically, at 1. Ground truth says what the frame
    # shows (size, shade, n_objects, the companion among the distractors) and what the sound says (loudness_db,
    # pitch, n_events). Nothing new is drawn: sizes, shades, counts and objects are those the frozen models know.
    ambiguity: float = 0.0
    ambiguity_companion: bool = True

    def __post_init__(self):
        if not 0.0 <= self.ambiguity <= 1.0:
            raise ValueError(f"WorldConfig.ambiguity must lie in [0, 1], got {self.ambiguity}")


AMBIGUITY_STREAM = 0xA3B1  # the third entry of the seed of the separate random stream of ambiguous clips


def _place_objects(rng: np.random.Generator, n: int, size: float) -> list[np.ndarray]:
    """Centres of n copies of an object of radius ``size``, kept apart where 20 tries allow."""
    centres: list[np.ndarray] = []
    for _ in range(n):
        for _try in range(20):
            c = rng.uniform(size + 1, IMAGE_SIZE - size - 1, 2)
            if all(np.hypot(*(c - o)) > 2 * size + 1 for o in centres):
                break
        centres.append(c)
    return centres


def _sample_source(rng: np.random.Generator, category: int, n_frames: int, always: bool, never: bool) -> tuple:
    pitch = float(rng.uniform(0, 1))
    loudness = float(rng.uniform(*LOUDNESS_RANGE_DB))
    n_events = int(rng.choice([1, 1, 2, 3]))
    size = float(loudness_to_size(loudness))
    shade = float(pitch_to_shade(pitch))
    # Which frames show the source: a contiguous window; outside it the source is off-screen or hidden behind a wall.
    if never:
        window = (0, 0)
    elif always:
        window = (0, n_frames)
    else:
        length = int(rng.integers(max(1, n_frames // 4), max(2, n_frames // 2 + 1)))
        start = int(rng.integers(0, n_frames - length + 1))
        window = (start, start + length)
    hidden_mode = [("offscreen" if rng.uniform() < 0.5 else "occluded") for _ in range(n_frames)]
    # Object copies: positions and a common slow drift.
    centres = _place_objects(rng, n_events, size)
    drift = rng.uniform(-0.6, 0.6, 2)
    src = SourceTruth(category, loudness, pitch, n_events, size, shade)
    return src, window, hidden_mode, np.array(centres), drift


def make_clip(seed: int, index: int, config: WorldConfig | None = None, category: int | None = None) -> Clip:
    """Clip ``index`` of the world with ``seed``: the same arguments always give the same clip."""
    cfg = config or WorldConfig()
    rng = np.random.default_rng([seed, index])
    n_sources = 2 if rng.uniform() < cfg.p_mixture else 1
    cats = list(rng.choice(N_CATEGORIES, size=n_sources, replace=False))
    if category is not None:
        cats[0] = category
        if n_sources == 2 and cats[1] == category:
            cats[1] = (category + 1 + int(rng.integers(0, N_CATEGORIES - 1))) % N_CATEGORIES
    always = rng.uniform() < cfg.p_always_visible
    audio = noise_floor(rng)
    plans = []
    for cat in cats:
        src, window, hidden, centres, drift = _sample_source(rng, int(cat), cfg.n_frames, always, cfg.never_visible)
        if not cfg.silent:
            src.events = _event_times(rng, src.n_events)
            audio = audio + synth_source(src.category, src.pitch, src.loudness_db, src.n_events, rng, src.events)
        plans.append((src, window, hidden, centres, drift))
    # Silent distractors: other categories, in view for a window of frames.
    distractor_plans = []
    if rng.uniform() < cfg.p_distractor:
        others = [c for c in range(N_CATEGORIES) if c not in cats]
        dcat = int(rng.choice(others))
        dsize = float(rng.uniform(*SIZE_RANGE))
        dshade = float(pitch_to_shade(rng.uniform(0, 1)))
        length = int(rng.integers(max(1, cfg.n_frames // 3), cfg.n_frames + 1))
        start = int(rng.integers(0, cfg.n_frames - length + 1))
        dpos = rng.uniform(dsize + 1, IMAGE_SIZE - dsize - 1, 2)
        distractor_plans.append((dcat, dsize, dshade, (start, start + length), dpos, rng.uniform(-0.6, 0.6, 2)))
    if cfg.ambiguity > 0:  # a separate stream: at ambiguity 0 not one random number more is drawn
        plans = _make_ambiguous(np.random.default_rng([seed, index, AMBIGUITY_STREAM]), cfg, plans, distractor_plans)
    background = _background(rng)
    wall_rgb = np.array(colorsys.hls_to_rgb(rng.uniform(0, 1), rng.uniform(0.2, 0.5), 0.1), dtype=np.float32)

    frames = np.zeros((cfg.n_frames, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    distractors: list[list[int]] = []
    for f in range(cfg.n_frames):
        img = background.copy()
        in_view: list[int] = []
        for dcat, dsize, dshade, (d0, d1), dpos, ddrift in distractor_plans:
            if d0 <= f < d1:
                c = np.clip(dpos + ddrift * f, dsize, IMAGE_SIZE - dsize)
                _paint(img, shape_mask(CATEGORIES[dcat].shape, *c, dsize), category_rgb(dcat, dshade))
                in_view.append(dcat)
        walls = []
        for src, (w0, w1), hidden, centres, drift in plans:
            shown = w0 <= f < w1
            boxes = []
            rgb = category_rgb(src.category, src.shade)
            for c0 in centres:
                c = np.clip(c0 + drift * f, src.size, IMAGE_SIZE - src.size)
                if shown:
                    _paint(img, shape_mask(CATEGORIES[src.category].shape, *c, src.size), rgb)
                    boxes.append(_box(*c, src.size))
                elif hidden[f] == "occluded":
                    _paint(img, shape_mask(CATEGORIES[src.category].shape, *c, src.size), rgb)
                    walls.append(_box(*c, src.size + 1.5))
                # off-screen: the object has left the view; nothing is drawn
            src.visible.append(bool(shown))
            src.boxes.append(boxes)
        for x0, y0, x1, y1 in walls:  # occluders are drawn last, over the hidden object
            img[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))] = wall_rgb
        distractors.append(in_view)
        frames[f] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    dattrs = {d[0]: (d[1], d[2]) for d in distractor_plans}
    return Clip(audio.astype(np.float32), frames, [p[0] for p in plans], distractors, (seed, index), dattrs)


def is_ambiguous(seed: int, index: int, ambiguity: float) -> bool:
    """Is clip ``index`` of the world ``seed`` ambiguous at this ``ambiguity`` (see :class:`WorldConfig`)?"""
    return ambiguity > 0 and np.random.default_rng([seed, index, AMBIGUITY_STREAM]).uniform() < ambiguity


def _make_ambiguous(rng: np.random.Generator, cfg: WorldConfig, plans: list, distractor_plans: list) -> list:
    """With probability ``cfg.ambiguity``: redraw what the sources look like independently of what they sound like,
    and add a silent companion (appended to ``distractor_plans``, in view in the first source's window)."""
    if rng.uniform() >= cfg.ambiguity:
        return plans
    out = []
    for src, window, hidden, _centres, drift in plans:
        src.size = float(rng.uniform(*SIZE_RANGE))
        src.shade = float(pitch_to_shade(rng.uniform(0, 1)))
        src.n_objects = int(rng.choice([1, 1, 2, 3]))
        src.ambiguous = True
        out.append((src, window, hidden, np.array(_place_objects(rng, src.n_objects, src.size)), drift))
    if cfg.ambiguity_companion:
        taken = {p[0].category for p in plans} | {d[0] for d in distractor_plans}
        ccat = int(rng.choice([c for c in range(N_CATEGORIES) if c not in taken]))
        csize = float(rng.uniform(*SIZE_RANGE))
        cshade = float(pitch_to_shade(rng.uniform(0, 1)))
        cpos = _place_objects(rng, 1, csize)[0]
        distractor_plans.append((ccat, csize, cshade, plans[0][1], cpos, rng.uniform(-0.6, 0.6, 2)))
    return out


def frame_targets(clip: Clip, f: int) -> np.ndarray:
    """Ground truth of frame f as a [4, N_CATEGORIES] array: presence, size, shade, count of each category in view
    (size/shade/count are 0 where the category is absent)."""
    out = np.zeros((4, N_CATEGORIES), dtype=np.float32)
    for src in clip.sources:
        if src.visible[f]:
            out[:, src.category] = (1.0, src.size, src.shade, src.n_objects)
    for c in clip.distractors[f]:
        size, shade = clip.distractor_attributes[c]
        out[:, c] = (1.0, size, shade, 1.0)
    return out


def render_object(category: int, size: float, shade: float, n_objects: int = 1, seed: int = 0) -> np.ndarray:
    """A single clean picture of a category on a background (used by figures and tests)."""
    rng = np.random.default_rng([seed, 99])
    img = _background(rng)
    for _ in range(n_objects):
        c = rng.uniform(size + 1, IMAGE_SIZE - size - 1, 2) if n_objects > 1 else np.array([16.0, 16.0])
        _paint(img, shape_mask(CATEGORIES[category].shape, *c, size), category_rgb(category, shade))
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
