"""Controllability: edits of the input sound and of the latent (paper guide "Controllability shown in the paper").

The paper shows that simple edits change the picture in the expected way; ``s2v_lib.control`` measures them.

**Waveform operations** (any 16 kHz mono recording):

* :func:`apply_gain` - a gain in dB, ``x * 10^(dB/20)`` (+6 dB doubles the amplitude);
* :func:`mix` - two sounds at a ratio, ``(1 - r) a + r g b``, optionally with the gain ``g`` of one component changed
  (the paper's "mix, then make one source louder or quieter").

**The volume cue and the z-scored front end.** The paper's front end z-scores every spectrogram (``audio.FrontEnd``)
but measures a power spectral *density* against an absolute floor, ``log(S + 1e-7)``; at ordinary levels most bins
sit near that floor, so a gain applied to a *whole* recording changes the z-scored image (a quieter clip puts more
bins on the floor), and the loudness cue survives (``s2v control`` measures it: ``frontend_dz_per_db_*`` for the
front end itself, ``volume_size_spearman_whole_clip`` for the pictures). Only a front end far above its floor
(raw ``|STFT|^2``) would turn a whole-clip gain into the constant shift ``2 log c`` that the z-score removes.
Two volume edits are offered: :func:`apply_gain` on the whole waveform (a nearer recorder), and
:class:`ToyStems` / :func:`toy_stems`, which take a toy clip apart into its source and its ambient floor so that
the source alone gets louder against the unchanged room (a nearer source), as the toy world's loudness tie means.

**Latent operations** in the frozen image encoder's embedding space:

* :func:`interpolate` - ``(1 - t) z_a + t z_b`` between two audio embeddings, or an audio and an image embedding;
* :func:`sound_direction` and :func:`edit_embedding` - image editing along a sound direction,
  ``z_image + alpha * (embed(loud) - embed(quiet))``.

**Bad input, and what happens** (each is tested):

* sounds of different sample rates: both are resampled to 16 kHz (``audio.resample``) before mixing;
* sounds of different lengths: ``length="pad"`` (default) zero-pads the shorter to the longer; ``"trim"`` cuts the
  longer to the shorter; ``"error"`` raises ``ValueError``;
* a gain or mix whose peak exceeds 1.0 (0 dBFS): ``on_clip="warn"`` (default) hard-clips to [-1, 1] with a
  :class:`ClippingWarning`, as a recorder or a 16-bit file would; ``"error"`` raises ``ValueError``; ``"keep"``
  keeps floating-point samples above 1 (the front end clips them to [-1, 1], as the authors do; the toy world's own
  clips stay within full scale, but a +18 dB edit of a loud drum does not, so its edits use ``"keep"``);
* interpolation weights or mixing ratios outside [0, 1] (or NaN): ``ValueError`` (extrapolation is not interpolation;
  use :func:`edit_embedding` to move beyond an embedding on purpose).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch

from . import toyworld as tw
from .audio import resample

SAMPLE_RATE = tw.SAMPLE_RATE
ON_CLIP = ("warn", "error", "keep")
LENGTHS = ("pad", "trim", "error")


class ClippingWarning(UserWarning):
    """A waveform edit pushed samples above 0 dBFS and they were clipped."""


# ----------------------------------------------------------------------------------------------------------------
# waveform operations


def db_to_gain(db: float) -> float:
    """Amplitude factor of a gain in dB: +6.02 dB doubles the amplitude, -20 dB divides it by 10."""
    return float(10 ** (np.asarray(db, dtype=np.float64) / 20))


def rms_db(wave: np.ndarray) -> float:
    """Root-mean-square level of a waveform in dBFS (0 dBFS: RMS 1)."""
    w = np.asarray(wave, dtype=np.float64)
    return float(20 * np.log10(np.sqrt(np.mean(w**2)) + 1e-12))


def _check_weight(t, what: str = "interpolation weight") -> np.ndarray:
    arr = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"{what} must lie in [0, 1], got {np.round(arr, 4).tolist()}")
    return arr


def _limit(wave: np.ndarray, on_clip: str, what: str) -> np.ndarray:
    if on_clip not in ON_CLIP:
        raise ValueError(f"on_clip must be one of {', '.join(ON_CLIP)}, not {on_clip!r}")
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak <= 1.0 or on_clip == "keep":
        return wave
    msg = f"{what} peaks at {peak:.2f} ({20 * np.log10(peak):+.1f} dBFS), above 0 dBFS"
    if on_clip == "error":
        raise ValueError(f"{msg}; lower the gain, or pass on_clip='warn' (clip) or 'keep' (floating point)")
    warnings.warn(f"{msg}: clipped to [-1, 1] (on_clip='keep' keeps the floating-point samples)", ClippingWarning,
                  stacklevel=3)  # fmt: skip
    return np.clip(wave, -1.0, 1.0)


def apply_gain(wave: np.ndarray, db: float, on_clip: str = "warn") -> np.ndarray:
    """``wave * 10^(db/20)`` as float32. Samples pushed above 0 dBFS are handled by ``on_clip`` (module docstring).

    Applied to a whole recording it moves every bin against the front end's absolute floor (module docstring); apply
    it to one source against a fixed background (:meth:`ToyStems.render`) to move the source nearer in its room."""
    out = np.asarray(wave, dtype=np.float64) * db_to_gain(db)
    return _limit(out, on_clip, f"a gain of {db:+.1f} dB").astype(np.float32)


def match_sounds(a: np.ndarray, b: np.ndarray, rate_a: int = SAMPLE_RATE, rate_b: int = SAMPLE_RATE,
                 length: str = "pad") -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Two mono waveforms at 16 kHz and of one length: each is resampled (torchaudio) if its rate differs, then the
    shorter is zero-padded at the end (``length="pad"``) or the longer cut (``"trim"``); ``"error"`` refuses."""
    if length not in LENGTHS:
        raise ValueError(f"length must be one of {', '.join(LENGTHS)}, not {length!r}")
    a, b = (np.asarray(x, dtype=np.float32) for x in (a, b))
    if a.ndim != 1 or b.ndim != 1 or not len(a) or not len(b):
        raise ValueError(f"need two non-empty mono waveforms, got shapes {a.shape} and {b.shape}")
    a, b = resample(a, int(rate_a), SAMPLE_RATE), resample(b, int(rate_b), SAMPLE_RATE)
    if len(a) != len(b):
        if length == "error":
            raise ValueError(f"the sounds differ in length ({len(a)} vs {len(b)} samples at {SAMPLE_RATE} Hz); "
                             "pass length='pad' or 'trim'")  # fmt: skip
        n = max(len(a), len(b)) if length == "pad" else min(len(a), len(b))
        a, b = (np.pad(x[:n], (0, n - len(x[:n]))) for x in (a, b))
    return a, b


def mix(a: np.ndarray, b: np.ndarray, ratio: float = 0.5, gain_db: float = 0.0, rate_a: int = SAMPLE_RATE,
        rate_b: int = SAMPLE_RATE, length: str = "pad", on_clip: str = "warn") -> np.ndarray:  # fmt: skip
    """``(1 - ratio) * a + ratio * 10^(gain_db/20) * b``: two sounds mixed at a ratio, ``gain_db`` changing the
    level of ``b`` alone (the paper's "mixture, then one source louder"). Rates and lengths are matched first
    (:func:`match_sounds`); ``ratio`` outside [0, 1] raises ``ValueError``; clipping as in :func:`apply_gain`."""
    r = float(_check_weight(ratio, "mixing ratio"))
    a, b = match_sounds(a, b, rate_a, rate_b, length)
    out = (1 - r) * a.astype(np.float64) + r * db_to_gain(gain_db) * b.astype(np.float64)
    return _limit(out, on_clip, "the mixture").astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# the toy world's stems: source(s) and ambient floor, apart


@dataclass
class ToyStems:
    """A toy clip taken apart: ``clip.audio == floor + source`` (up to float32 rounding)."""

    source: np.ndarray  # float32 [N]: the sounding source(s)
    floor: np.ndarray  # float32 [N]: the ambient noise floor every clip shares (NOISE_FLOOR_DB)
    clip: tw.Clip

    @property
    def category(self) -> int:
        return self.clip.category

    @property
    def loudness_db(self) -> float:
        """The (first) source's level while it sounds, dBFS, as the world drew it."""
        return self.clip.sources[0].loudness_db

    def render(self, gain_db: float = 0.0) -> np.ndarray:
        """The clip with its source ``gain_db`` louder against the unchanged floor (a nearer source in the same room).
        Floating-point, no clipping here (the front end clips to [-1, 1], as the authors do)."""
        return (self.floor + apply_gain(self.source, gain_db, on_clip="keep")).astype(np.float32)

    def mixed_with(self, other: ToyStems, gain_db: float = 0.0) -> np.ndarray:
        """This clip plus ``other``'s source, ``gain_db`` louder, over this clip's floor: a two-source clip as the
        world makes them (one room, two sources)."""
        return (self.floor + self.source + apply_gain(other.source, gain_db, on_clip="keep")).astype(np.float32)


def toy_stems(seed: int, index: int, config: tw.WorldConfig | None = None, category: int | None = None) -> ToyStems:
    """Clip ``index`` of the world ``seed`` with its source(s) and its floor apart.

    The floor is drawn before anything else of a clip, so the same clip made silent has the same floor:
    ``floor = make_clip(..., silent=True).audio`` and ``source = audio - floor``."""
    cfg = config or tw.WorldConfig()
    clip = tw.make_clip(seed, index, cfg, category)
    floor = tw.make_clip(seed, index, replace(cfg, silent=True), category).audio
    return ToyStems((clip.audio.astype(np.float64) - floor).astype(np.float32), floor, clip)


# ----------------------------------------------------------------------------------------------------------------
# latent operations


def interpolate(start, end, weights) -> torch.Tensor:
    """``(1 - t) * start + t * end`` for each weight t: [D] and [D] -> [len(weights), D] (a scalar t gives [D]).

    ``start`` and ``end`` are embeddings of the same space: two audio embeddings, or an audio and an image
    embedding. Weights must lie in [0, 1] (``ValueError`` otherwise)."""
    t = torch.as_tensor(_check_weight(weights), dtype=torch.float32)
    a = torch.as_tensor(start, dtype=torch.float32)
    b = torch.as_tensor(end, dtype=torch.float32)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"interpolate two [D] embeddings, got {tuple(a.shape)} and {tuple(b.shape)}")
    if t.ndim == 0:
        return (1 - t) * a + t * b
    return (1 - t[:, None]) * a[None] + t[:, None] * b[None]


def sound_direction(encoder, loud, quiet) -> torch.Tensor:
    """``embed(loud) - embed(quiet)`` with a trained audio encoder (``encoder.embed(waves)``): [D]. Batches of
    waveforms [B, N] give the mean difference over the batch (a steadier direction than one pair)."""
    loud, quiet = np.atleast_2d(np.asarray(loud, np.float32)), np.atleast_2d(np.asarray(quiet, np.float32))
    if loud.shape != quiet.shape:
        raise ValueError(f"loud and quiet sounds must pair up, got {loud.shape} and {quiet.shape}")
    return (encoder.embed(loud) - encoder.embed(quiet)).mean(0)


def edit_embedding(image_embedding, direction, alpha: float | list = 1.0) -> torch.Tensor:
    """``z_image + alpha * direction`` (the paper's image editing along a sound direction). ``image_embedding`` [D]
    or [B, D]; a list of alphas gives one row per alpha ([len(alphas), D] for one embedding)."""
    z = torch.as_tensor(image_embedding, dtype=torch.float32)
    d = torch.as_tensor(direction, dtype=torch.float32)
    al = torch.as_tensor(alpha, dtype=torch.float32)
    if not torch.isfinite(al).all():
        raise ValueError(f"alpha must be finite, got {alpha}")
    if al.ndim == 0:
        return z + al * d
    if z.ndim != 1:
        raise ValueError("several alphas need one image embedding [D]")
    return z[None] + al[:, None] * d[None]
