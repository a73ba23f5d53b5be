"""Audio: waveform I/O, the spectrogram front end, and waveform manipulations (paper guide steps 1 and 3).

The paper feeds its audio encoder ``log(|STFT|^2 + 1e-7)``: a linear-frequency log-power spectrogram of 10 s of
16 kHz mono audio (window 512, hop ~159 -> 257 x ~1004), z-scored per clip, as a one-channel image.
:class:`FrontEnd` implements exactly that; its ``toy`` preset scales the window and hop to the toy world's 2 s clips
so the spectrogram is a 64 x 65 image a laptop CPU can push through a ResNet-18 in minutes.

Per-clip z-scoring removes the absolute level of a clip. The toy world keeps the loudness cue anyway: every clip
shares the same ambient noise floor, so a louder source stands further above the floor (see ``toyworld``).
``normalize="global"`` (fixed statistics) is offered as the alternative that keeps absolute level.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .toyworld import CLIP_SECONDS, SAMPLE_RATE

SILENCE_DBFS = -90.0


class AudioError(ValueError):
    """A sound file that cannot be used, with the file and the reason in one line."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class FrontEnd:
    """Waveform -> log-power spectrogram image, as in the paper (``log(|STFT|^2 + 1e-7)``, per-clip z-score)."""

    sample_rate: int = SAMPLE_RATE
    clip_seconds: float = CLIP_SECONDS
    n_fft: int = 126
    hop_length: int = 500
    normalize: str = "clip"  # "clip": per-clip z-score (paper); "global": fixed mean/std below
    global_mean: float = -9.0
    global_std: float = 4.0

    @classmethod
    def preset(cls, name: str) -> FrontEnd:
        if name == "toy":
            return cls()
        if name == "paper":  # 10 s clips, 257 x 1004 spectrograms as in the authors' code
            return cls(clip_seconds=10.0, n_fft=512, hop_length=159)
        raise ValueError(f"unknown front-end preset {name!r}: use 'toy' or 'paper'")

    @property
    def n_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def shape(self) -> tuple[int, int]:
        """(frequency bins, time frames) of one spectrogram."""
        return self.n_fft // 2 + 1, self.n_samples // self.hop_length + 1

    def __call__(self, wave: torch.Tensor | np.ndarray) -> torch.Tensor:
        """[N] or [B, N] waveform(s) at ``sample_rate`` -> [B, 1, F, T] float32 spectrogram images."""
        x = torch.as_tensor(np.asarray(wave) if not torch.is_tensor(wave) else wave, dtype=torch.float32)
        if x.ndim == 1:
            x = x[None]
        x = fit_length(x, self.n_samples)
        spec = torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=torch.hann_window(self.n_fft, device=x.device),
            return_complex=True,
        )
        logpow = torch.log(spec.abs().square() + 1e-7)
        if self.normalize == "clip":
            mu = logpow.mean(dim=(1, 2), keepdim=True)
            sd = logpow.std(dim=(1, 2), keepdim=True).clamp_min(1e-5)
            logpow = (logpow - mu) / sd
        elif self.normalize == "global":
            logpow = (logpow - self.global_mean) / self.global_std
        else:
            raise ValueError(f"normalize must be 'clip' or 'global', not {self.normalize!r}")
        return logpow[:, None]


def fit_length(x: torch.Tensor, n: int) -> torch.Tensor:
    """Tile a short waveform (as the authors do) or cut a long one to exactly n samples along the last axis."""
    if x.shape[-1] == 0:
        raise ValueError("empty waveform")
    if x.shape[-1] < n:
        x = x.repeat(*([1] * (x.ndim - 1)), math.ceil(n / x.shape[-1]))
    return x[..., :n]


# ----------------------------------------------------------------------------------------------------------------
# reading and writing sound files


def _decode_with_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        streams = container.streams.audio
        if not streams:
            raise AudioError(path, "no audio track")
        stream = streams[0]
        chunks, rate = [], stream.rate or stream.codec_context.sample_rate
        for frame in container.decode(stream):
            a = frame.to_ndarray()
            if a.ndim == 1:
                a = a[None]
            if frame.format.is_packed:  # interleaved [1, n * channels]
                a = a.reshape(-1, len(frame.layout.channels)).T
            if np.issubdtype(a.dtype, np.integer):
                a = a.astype(np.float32) / np.iinfo(a.dtype).max
            chunks.append(a.astype(np.float32))
    if not chunks:
        raise AudioError(path, "audio track holds no samples")
    return np.concatenate(chunks, axis=1).T, int(rate)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any common sound file (wav, flac, ogg, mp3) or the audio track of a video -> float32 mono at ``sample_rate``.

    Raises :class:`AudioError` naming the file and the reason for empty, unreadable, non-audio, NaN-containing and
    silent (peak below -90 dBFS) files.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:
        try:
            data, rate = _decode_with_av(path)
        except AudioError:
            raise
        except Exception as err:  # PyAV raises many kinds for non-media or truncated files
            raise AudioError(path, f"not a readable sound or video file ({type(err).__name__})") from None
    if data.size == 0:
        raise AudioError(path, "no samples (empty or truncated)")
    if not np.all(np.isfinite(data)):
        raise AudioError(path, "contains NaN or infinite samples")
    mono = data.mean(axis=1)
    if mono.size and 20 * np.log10(np.max(np.abs(mono)) + 1e-12) < SILENCE_DBFS:
        raise AudioError(path, f"silent (peak below {SILENCE_DBFS:.0f} dBFS): there is nothing to hear")
    return resample(mono, int(rate), sample_rate)


def resample(wave: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    if rate == target:
        return np.asarray(wave, dtype=np.float32)
    import torchaudio.functional as AF

    return AF.resample(torch.as_tensor(wave, dtype=torch.float32), rate, target).numpy()


def save_wav(path: str | Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    if peak > 1.0:
        warnings.warn(f"{path.name}: peak {peak:.2f} > 1, scaled down to avoid clipping", stacklevel=2)
        wave = wave / peak
    sf.write(str(path), np.asarray(wave, dtype=np.float32), sample_rate, subtype="PCM_16")
    return path
