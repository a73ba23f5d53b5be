"""Audio: the spectrogram front end (paper guide step 3), and waveform I/O (step 1).

:class:`FrontEnd` computes exactly what the authors' data loader computes (``a2s_dataloader.py``), in torch, batched,
on any device:

1. tile a short clip and cut it to the clip length (``np.tile(x, 10)[:160000]`` for 10 s at 16 kHz);
2. clip the samples to [-1, 1];
3. ``scipy.signal.spectrogram(x, 16000, nperseg=512, noverlap=353)`` with scipy's defaults: segments of 512 samples
   every 159, each with its mean removed (constant detrend), a Tukey window (alpha 0.25), a one-sided FFT, scaled
   to a power spectral **density** (``2 |X|^2 / (fs * sum(w^2))``; DC and Nyquist not doubled), no padding:
   257 frequencies x 1004 time steps for 10 s;
4. ``log(S + 1e-7)``;
5. a per-clip z-score with the population standard deviation: ``(L - mean) / (std + 1e-9)``.

Why the scaling matters: a density is about 1e-6 of the raw ``|STFT|^2``, so for a recording at an ordinary level
most bins sit at or near the ``1e-7`` floor. The floor is a fixed, absolute reference: a whole-clip gain moves the
sound's bins against it, so the per-clip z-score does *not* erase loudness (``s2v loudness`` measures by how much).
A front end with raw ``|STFT|^2`` (the floor never reached) would erase it.

Presets: ``paper`` is the authors' front end (10 s, 257 x 1004). ``toy`` applies the same formula to the toy world's
2 s clips with windows that hear every sample: segments of 512 every 448 samples (consecutive Tukey windows overlap
by their 64-sample tapers, so every sample gets a window weight of at least 0.5) on the clip zero-padded by 160
samples at each end, giving 257 x 72. The paper's preset does not hear its first sample (window weight 0) nor its
last 11, as in the authors' code. Where we deviate from the authors, we say so: clips are mixed down to mono before
anything else (their loader would tile a stereo array along the wrong axis), and a clip shorter than a tenth of the
clip length is tiled until it fills it (their ``np.tile(x, 10)`` would leave it short, and their batches would not
stack).
"""

from __future__ import annotations

import math
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .toyworld import CLIP_SECONDS, SAMPLE_RATE

SILENCE_DBFS = -90.0
PSD_FLOOR = 1e-7  # log(S + 1e-7), as the authors
ZSCORE_EPS = 1e-9


class AudioError(ValueError):
    """A sound file that cannot be used, with the file and the reason in one line."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def tukey_window(n: int, alpha: float = 0.25, device=None) -> torch.Tensor:
    """scipy's periodic Tukey window (``scipy.signal.get_window(("tukey", alpha), n)``): flat in the middle, cosine
    tapers of ``alpha * n / 2`` samples at each end, weight 0 at the first sample."""
    m = n + 1  # periodic: the symmetric window of n + 1 points without its last point
    k = torch.arange(m, dtype=torch.float64, device=device)
    width = int(math.floor(alpha * (m - 1) / 2.0))
    w = torch.ones(m, dtype=torch.float64, device=device)
    if width > 0:
        head = k[: width + 1]
        w[: width + 1] = 0.5 * (1 + torch.cos(math.pi * (-1 + 2.0 * head / alpha / (m - 1))))
        tail = k[m - width - 1 :]
        w[m - width - 1 :] = 0.5 * (1 + torch.cos(math.pi * (-2.0 / alpha + 1 + 2.0 * tail / alpha / (m - 1))))
    return w[:n].float()


@dataclass(frozen=True)
class FrontEnd:
    """Waveform -> z-scored log power-spectral-density image, as the authors compute it (see the module docstring)."""

    sample_rate: int = SAMPLE_RATE
    clip_seconds: float = CLIP_SECONDS
    nperseg: int = 512
    noverlap: int = 64
    pad: int = 160  # zeros added at each end before framing (0 for the paper preset)
    tukey_alpha: float = 0.25
    normalize: str = "clip"  # "clip": per-clip z-score (paper); "global": fixed mean/std below (an exercise)
    global_mean: float = -14.0
    global_std: float = 3.0

    @classmethod
    def preset(cls, name: str) -> FrontEnd:
        if name == "toy":
            return cls()
        if name == "paper":  # the authors: 10 s, scipy.signal.spectrogram(x, 16000, nperseg=512, noverlap=353)
            return cls(clip_seconds=10.0, nperseg=512, noverlap=353, pad=0)
        raise ValueError(f"unknown front-end preset {name!r}: use 'toy' or 'paper'")

    @property
    def n_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def hop(self) -> int:
        return self.nperseg - self.noverlap

    @property
    def shape(self) -> tuple[int, int]:
        """(frequency bins, time frames) of one spectrogram."""
        return self.nperseg // 2 + 1, (self.n_samples + 2 * self.pad - self.nperseg) // self.hop + 1

    def coverage(self) -> np.ndarray:
        """The largest window weight each sample of a clip gets in any segment (0: the front end never hears it)."""
        w = tukey_window(self.nperseg, self.tukey_alpha).numpy()
        cover = np.zeros(self.n_samples + 2 * self.pad)
        for t in range(self.shape[1]):
            s = t * self.hop
            cover[s : s + self.nperseg] = np.maximum(cover[s : s + self.nperseg], w)
        return cover[self.pad : self.pad + self.n_samples]

    def power_density(self, wave: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Steps 1-3: [N] or [B, N] waveform(s) -> [B, F, T] one-sided power spectral density (scipy's defaults)."""
        x = torch.as_tensor(np.asarray(wave) if not torch.is_tensor(wave) else wave, dtype=torch.float32)
        if x.ndim == 1:
            x = x[None]
        x = fit_length(x, self.n_samples).clamp(-1.0, 1.0)
        if self.pad:
            x = torch.nn.functional.pad(x, (self.pad, self.pad))
        seg = x.unfold(-1, self.nperseg, self.hop)  # [B, T, nperseg]
        seg = seg - seg.mean(-1, keepdim=True)  # detrend="constant"
        win = tukey_window(self.nperseg, self.tukey_alpha, device=x.device)
        spec = torch.fft.rfft(seg * win, dim=-1)
        psd = spec.real.square() + spec.imag.square()
        psd = psd / (self.sample_rate * win.square().sum())
        psd[..., 1:-1] *= 2  # one-sided: every bin but DC and Nyquist (nperseg is even) counts twice
        return psd.transpose(-1, -2)

    def __call__(self, wave: torch.Tensor | np.ndarray) -> torch.Tensor:
        """[N] or [B, N] waveform(s) at ``sample_rate`` -> [B, 1, F, T] float32 spectrogram images (steps 1-5)."""
        # log(S + 1e-7) = log(1e-7) + log1p(S / 1e-7): the same numbers, but exact in float32 even for a quiet clip
        # whose bins all sit near the floor (there the z-score divides by a tiny spread)
        logpsd = torch.log1p(self.power_density(wave) / PSD_FLOOR)
        if self.normalize == "global":
            logpsd = logpsd + math.log(PSD_FLOOR)
        if self.normalize == "clip":
            mu = logpsd.mean(dim=(1, 2), keepdim=True)
            sd = logpsd.std(dim=(1, 2), keepdim=True, unbiased=False)
            logpsd = (logpsd - mu) / (sd + ZSCORE_EPS)
        elif self.normalize == "global":
            logpsd = (logpsd - self.global_mean) / self.global_std
        else:
            raise ValueError(f"normalize must be 'clip' or 'global', not {self.normalize!r}")
        return logpsd[:, None]


def fit_length(x: torch.Tensor, n: int) -> torch.Tensor:
    """Tile a short waveform (as the authors do) or cut a long one to exactly n samples along the last axis."""
    if x.shape[-1] == 0:
        raise ValueError("empty waveform")
    if x.shape[-1] < n:
        x = x.repeat(*([1] * (x.ndim - 1)), math.ceil(n / x.shape[-1]))
    return x[..., :n]


# ----------------------------------------------------------------------------------------------------------------
# reading and writing sound files


class AudioWarning(UserWarning):
    """A sound file that was read, but not as its header promised (e.g. truncated): one line naming the file."""


MIN_SECONDS = 0.5
"""The shortest recording ``s2v generate`` draws from (seconds of sound in the file). Every sound is tiled to the
clip length before the front end (as the authors do); below half a second, shorter than the toy world's shortest
sound event (0.3 s) with its pause, tiling turns a sound into a fast train of clicks, and the picture would be of
that train, not of the sound. ``s2v familiarity`` measures how far toy clips cut shorter than this drift."""


@dataclass
class Recording:
    """A sound file as read: the waveform and what the file said about itself."""

    path: str
    wave: np.ndarray  # float32 mono at ``sample_rate``, at most ``max_seconds`` long
    sample_rate: int
    file_rate: int  # the file's own sample rate
    channels: int
    seconds: float  # seconds of sound read from the file
    header_seconds: float | None  # what the file's header promises (None where the format does not say)
    warnings: list[str] = field(default_factory=list)  # one line each, e.g. truncation

    @property
    def flagged(self) -> bool:
        return bool(self.warnings)


def _wav_header(f, size: int) -> tuple[float, float] | None:
    """(seconds the data chunk promises, seconds the file holds) of a RIFF/WAVE file, None if not one."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    rate = block = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        cid, n = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"fmt ":
            fmt = f.read(min(n, 16))
            if len(fmt) < 16:
                return None
            rate, block = struct.unpack("<I", fmt[4:8])[0], struct.unpack("<H", fmt[12:14])[0]
            f.seek(n - 16 + (n & 1), 1)
        elif cid == b"data":
            if not rate or not block or n in (0, 0xFFFFFFFF):  # 0 / -1: a streaming writer's "length unknown"
                return None
            held = max(size - f.tell(), 0)
            return n // block / rate, min(n, held) // block / rate
        else:
            f.seek(n + (n & 1), 1)


def _flac_header(f) -> float | None:
    """Seconds the STREAMINFO block of a FLAC file promises (None if unknown or not FLAC)."""
    if f.read(4) != b"fLaC":
        return None
    block = f.read(4 + 34)
    if len(block) < 38 or block[0] & 0x7F != 0:  # STREAMINFO must come first
        return None
    bits = int.from_bytes(block[4 + 10 : 4 + 18], "big")  # rate:20 channels:3 bps:5 total:36
    rate, total = bits >> 44, bits & ((1 << 36) - 1)
    return total / rate if rate and total else None


def _header_seconds(path: Path) -> tuple[float | None, float | None]:
    """(seconds the header promises, seconds the file holds if the header alone tells) for WAV and FLAC."""
    try:
        with open(path, "rb") as f:
            wav = _wav_header(f, path.stat().st_size)
            if wav is not None:
                return wav
            f.seek(0)
            return _flac_header(f), None
    except (OSError, struct.error):
        return None, None


def _decode_with_av(path: Path, max_seconds: float | None = None) -> tuple[np.ndarray, int, float | None, bool]:
    """(samples [n, channels], rate, seconds the container promises, stopped early on a damaged packet)."""
    import av

    with av.open(str(path)) as container:
        streams = container.streams.audio
        if not streams:
            raise AudioError(path, "no audio track")
        stream = streams[0]
        rate = int(stream.rate or stream.codec_context.sample_rate)
        promised = None  # only a duration the container stores (mp3 and raw AAC estimate it from the bit rate)
        if container.format.name not in ("mp3", "aac", "ac3", "eac3"):
            if stream.duration and stream.time_base:
                promised = float(stream.duration * stream.time_base)
            elif container.duration:
                promised = container.duration / av.time_base
        limit = int(max_seconds * rate) if max_seconds else None
        chunks, n, damaged = [], 0, False
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    a = frame.to_ndarray()
                    if a.ndim == 1:
                        a = a[None]
                    if frame.format.is_packed:  # interleaved [1, n * channels]
                        a = a.reshape(-1, len(frame.layout.channels)).T
                    if a.dtype == np.uint8:  # 8-bit PCM is unsigned, centred on 128
                        a = (a.astype(np.float32) - 128.0) / 128.0
                    elif np.issubdtype(a.dtype, np.integer):
                        a = a.astype(np.float32) / -np.iinfo(a.dtype).min
                    chunks.append(a.astype(np.float32))
                    n += a.shape[1]
                if limit is not None and n >= limit:
                    break
        except av.error.FFmpegError:
            if not chunks:
                raise
            damaged = True  # a truncated file: keep what decoded before the damage
    if not chunks:
        return np.zeros((0, 1), np.float32), rate, promised, damaged
    data = np.concatenate(chunks, axis=1).T
    return (data[:limit] if limit is not None else data), rate, promised, damaged


def read_sound(path: str | Path, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None,
               min_seconds: float = 0.0) -> Recording:  # fmt: skip
    """Any common sound file (wav, flac, ogg, mp3) or the audio track of a video -> a :class:`Recording` (float32
    mono at ``sample_rate``).

    Reads at most the first ``max_seconds`` (memory stays bounded for an hour-long file). Raises :class:`AudioError`
    naming the file and the reason for missing, empty, header-only, unreadable, non-audio, NaN-containing, silent
    (peak below -90 dBFS) and too short (under ``min_seconds`` of sound) files. A file whose header promises more
    sound than it holds (truncated) is read as far as it goes, with a one-line warning in ``Recording.warnings``.
    """
    import soundfile as sf

    path = Path(path).expanduser()
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file")
    promised, held = _header_seconds(path)
    damaged, data = False, None
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            data = f.read(frames=int(max_seconds * rate) if max_seconds else -1, dtype="float32", always_2d=True)
    except Exception:
        pass
    if data is None or data.size == 0:  # libsndfile cannot read it (or gave up on a damaged stream): try FFmpeg
        try:
            data, rate, av_promised, damaged = _decode_with_av(path, max_seconds)
        except AudioError:
            raise
        except Exception as err:  # PyAV raises many kinds for non-media or truncated files
            if promised:
                raise AudioError(path, f"truncated or damaged: the header promises {promised:.2f} s of sound, "
                                       "none of it decodes") from None  # fmt: skip
            raise AudioError(path, f"not a readable sound or video file ({type(err).__name__})") from None
        promised = promised or av_promised
    seconds = len(data) / rate
    if damaged:
        held = seconds
    truncated = None
    if promised:
        tol = max(0.05, 0.01 * promised)  # codecs' priming and padding; a few ms missing is not worth a warning
        holds = held if held is not None else seconds
        if (held is not None and held < promised - tol) or seconds < min(promised, max_seconds or np.inf) - tol:
            truncated = f"truncated: the header promises {promised:.2f} s of sound, the file holds {holds:.2f} s"
    if data.size == 0:
        raise AudioError(path, f"{truncated} (header only)" if truncated else "no samples (empty or truncated)")
    if not np.all(np.isfinite(data)):
        raise AudioError(path, "contains NaN or infinite samples")
    mono = data.mean(axis=1)
    if 20 * np.log10(np.max(np.abs(mono)) + 1e-12) < SILENCE_DBFS:
        where = f" in its first {seconds:.2f} s (all that is read)" if max_seconds and seconds >= max_seconds else ""
        raise AudioError(path, f"silent{where} (peak below {SILENCE_DBFS:.0f} dBFS): there is nothing to hear")
    if seconds < min_seconds:
        short = (f"too short: {seconds:.3f} s of sound, the minimum is {min_seconds:g} s (tiled to fill a clip it "
                 "would become a train of clicks, not your sound)")  # fmt: skip
        raise AudioError(path, f"{truncated}; {short}" if truncated else short)
    notes = [f"{truncated}; read {seconds:.2f} s"] if truncated else []
    return Recording(str(path), resample(mono, int(rate), sample_rate), sample_rate, int(rate), data.shape[1],
                     seconds, promised, notes)  # fmt: skip


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None,
               min_seconds: float = 0.0) -> np.ndarray:  # fmt: skip
    """:func:`read_sound`'s waveform: float32 mono at ``sample_rate``; a truncated file gives an
    :class:`AudioWarning` (one line naming the file and how much was read)."""
    rec = read_sound(path, sample_rate, max_seconds, min_seconds)
    for note in rec.warnings:
        warnings.warn(AudioWarning(f"{path}: {note}"), stacklevel=2)
    return rec.wave


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
