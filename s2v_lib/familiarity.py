"""Familiarity: how far to trust a picture drawn from a sound (a guard rail on paper guide step 7).

The audio encoder maps *any* spectrogram to some point of the image-embedding space, and the frozen generator draws
whatever point it is given. A sound unlike every training sound (speech, a chainsaw, in the toy profile anything but
the toy world's eight sounds) lands where no training sound did, or worse, on top of one; its picture is then the
generator's guess, not an answer. Familiarity says how far a sound is from the training sounds, as the encoder sees
them, in units that have a measured meaning:

    d_s(x)       for each stage s of the encoder's ResNet backbone (layer1 .. layer4): the mean and standard
                 deviation of every channel over the time-frequency map, and the mean cosine distance from those
                 of sound x to those of its k = 10 nearest training clips
    distance     the mean over stages of d_s(x) / (the median d_s of held-out toy clips), then divided by the
                 median of that over the held-out clips (1.0: as near as a typical unseen toy clip)
    familiarity  the share of held-out toy calibration clips at least as far: a conformal p-value, about 0.5 for a
                 typical toy clip and 0 for a sound farther out than every one of them
    unfamiliar   familiarity < alpha = 0.01: by construction about one unseen toy clip in a hundred is flagged
    nearest      the toy category most of the k nearest training clips belong to, in the audio-embedding space (the
                 space the generator draws from)

Why the backbone's stages and not the audio embedding alone: the embedding is trained to keep only what predicts the
image embedding (category, loudness, pitch, count), so sounds of other kinds collapse onto the toy categories (a
chord lands on "hum", as near as a toy hum). The earlier stages still see how the sound is made; ``s2v familiarity``
reports both (the embedding-only statistics under "other statistics").

A :class:`Reference` holds the training clips' embeddings and features and the calibration distances. ``s2v demo``
saves one beside its encoder (``runs/demo/audio_encoder.familiarity.npz``: its own training clips, calibrated on
its held-out clips); for any other encoder :func:`reference_for` builds one once from fresh toy clips and keeps it.

``s2v familiarity`` measures how well this separates held-out toy clips (read from files at several sample rates,
as a user's files are) from real recordings made on the spot (espeak-ng speech, sox alarms, noises and sweeps, the
freedesktop sound theme; a fresh set fixed before anything was measured on it): the AUROC, the rates of
"unfamiliar" on each side, the same for real sounds placed in the toy world's room (its level and noise floor), how
toy clips cut short and tiled drift away, and the AUROC of the other statistics tried.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import toyworld as tw

K = 10
ALPHA = 0.01
STAGES = ("layer1", "layer2", "layer3", "layer4")  # the audio encoder's ResNet stages whose features are compared
MAX_REFERENCE = 1000  # training clips kept in a reference (a random subset of them when there are more)
REFERENCE_SEED = 9017  # fresh toy clips for an encoder without a saved reference (never used for training)
TEST_SEED = 2717  # the held-out toy clips of `s2v familiarity` (neither training, reference nor calibration)
TEST_RATES = (16000, 22050, 44100, 48000)  # the toy clips are written at these rates, as a user's files might be
DEMO_REFERENCE = Path("runs") / "demo" / "audio_encoder.familiarity.npz"  # what `s2v demo` saves
FULL_PROFILE_HINT = "real sounds need the full profile (S2V_PROFILE=full on a GPU, notebook 07)"


def unfamiliar_hint() -> str:
    """What to tell a user whose sound is unfamiliar: the toy world's vocabulary, and where real sounds belong."""
    names = ", ".join(f"{c.name} ({c.sound})" for c in tw.CATEGORIES)
    return f"The toy world knows only {len(tw.CATEGORIES)} sounds: {names}; {FULL_PROFILE_HINT}"


@dataclass
class Familiarity:
    """How familiar one sound is to the audio encoder (see the module docstring for the definitions)."""

    nearest: str  # the toy category most of the k nearest training clips belong to
    share: float  # the share of the k nearest training clips in that category
    distance: float  # the combined stage distance, in units of a typical held-out toy clip's
    familiarity: float  # share of held-out toy clips at least as far from the training clips
    unfamiliar: bool
    threshold: float  # the distance above which a sound is unfamiliar
    k: int = K

    def note(self, hint: bool = True) -> str:
        """One line for a user: what the sound is nearest to, and how far to trust the picture (``hint``: for an
        unfamiliar sound, what the toy world knows and where real sounds belong)."""
        where = (f"nearest toy sound '{self.nearest}' ({self.share:.0%} of its {self.k} nearest training clips), "
                 f"distance {self.distance:.1f}x a typical toy clip's, familiarity {self.familiarity:.2f}")  # fmt: skip
        if not self.unfamiliar:
            return f"familiar: {where}"
        note = f"UNFAMILIAR: {where} (unfamiliar above {self.threshold:.1f}x): the picture is the generator's guess"
        return f"{note}. {unfamiliar_hint()}" if hint else note

    def as_dict(self) -> dict:
        return asdict(self)


def knn_distances(queries: np.ndarray, reference: np.ndarray, k: int = K, cosine: bool = False):
    """(mean distance to the k nearest reference rows [B], their indices [B, k]); ``cosine``: the distance between
    unit vectors (the chord, a monotone function of the cosine)."""
    q, r = np.asarray(queries, np.float64), np.asarray(reference, np.float64)
    if cosine:
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
    d2 = (q * q).sum(1)[:, None] + (r * r).sum(1)[None] - 2 * q @ r.T
    d = np.sqrt(np.maximum(d2, 0.0))
    k = min(k, r.shape[0])
    idx = np.argpartition(d, k - 1, axis=1)[:, :k]
    return np.take_along_axis(d, idx, 1).mean(1), idx


@torch.no_grad()
def encoder_features(model, specs: torch.Tensor, batch_size: int = 128) -> tuple[np.ndarray, list[np.ndarray]]:
    """What the encoder makes of spectrograms: (audio embeddings [B, D], per-stage features: for each of the
    backbone's four stages, the mean and standard deviation of every channel over the time-frequency map [B, 2C])."""
    model.eval()
    device = next(model.parameters()).device
    stages = [getattr(model.backbone, name) for name in STAGES]
    grabbed: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: grabbed.append(out)) for m in stages]
    emb, feats = [], [[] for _ in STAGES]
    try:
        for i in range(0, len(specs), batch_size):
            grabbed.clear()
            emb.append(model(specs[i : i + batch_size].to(device).float()).cpu().numpy())
            for j, h in enumerate(grabbed):
                feats[j].append(torch.cat([h.mean((2, 3)), h.std((2, 3))], 1).cpu().numpy())
    finally:
        for h in hooks:
            h.remove()
    if not emb:
        return np.zeros((0, model.config["emb_dim"]), np.float32), [np.zeros((0, 1), np.float32) for _ in STAGES]
    return np.concatenate(emb), [np.concatenate(f) for f in feats]


@dataclass
class Reference:
    """What familiarity compares a sound with: the training clips' audio embeddings (for the nearest category) and
    per-stage encoder features (for the distance), and the distances of held-out calibration clips."""

    embeddings: np.ndarray  # float32 [N, D]: the training clips' audio embeddings
    labels: np.ndarray  # int64 [N]: their toy categories
    features: list  # per stage, [N, F_s] (stored as float16)
    scales: np.ndarray  # [S]: the median k-NN distance of the calibration clips in each stage
    calibration: np.ndarray  # [M] sorted: the combined distance of held-out calibration clips (never in the N)
    k: int = K
    alpha: float = ALPHA
    encoder_key: str = ""
    source: str = ""
    category_names: tuple = tw.CATEGORY_NAMES

    @classmethod
    def fit(cls, embeddings, labels, features, calibration_features, k: int = K, alpha: float = ALPHA,
            encoder_key: str = "", source: str = "") -> Reference:  # fmt: skip
        """Calibrate: each stage's distances are divided by their median over the calibration clips, averaged over
        the stages, and the calibration clips' own combined distances are kept (sorted) for the p-value."""
        feats = [np.asarray(f, np.float16) for f in features]
        raw = np.stack([knn_distances(c, f, k, cosine=True)[0] for c, f in zip(calibration_features, feats)])
        scales = np.median(raw, axis=1)
        calibration = np.sort((raw / scales[:, None]).mean(0))
        return cls(np.asarray(embeddings, np.float32), np.asarray(labels, np.int64), feats, scales, calibration, k,
                   alpha, encoder_key, source)  # fmt: skip

    def distances(self, features) -> np.ndarray:
        """The combined distance (the mean over stages of the k-NN cosine distance / the stage's scale) [B]."""
        per_stage = [knn_distances(q, f, self.k, cosine=True)[0] / s
                     for q, f, s in zip(features, self.features, self.scales)]  # fmt: skip
        return np.mean(per_stage, axis=0)

    @property
    def typical(self) -> float:
        return float(np.median(self.calibration))

    @property
    def threshold(self) -> float:
        """The distance (in typical units) above which ``familiarity < alpha``, i.e. a sound is unfamiliar."""
        m = len(self.calibration)
        # familiarity(d) = (1 + #{c >= d}) / (m + 1) < alpha  <=>  #{c >= d} <= r
        r = int(np.ceil(self.alpha * (m + 1) - 1)) - 1
        if r < 0:
            return float("inf")  # too few calibration clips to call anything unfamiliar at this alpha
        return float(self.calibration[m - 1 - r]) / self.typical

    def familiarity_of(self, d: np.ndarray) -> np.ndarray:
        """Conformal p-value of combined distances: the share of calibration clips at least as far (with +1)."""
        at_least = len(self.calibration) - np.searchsorted(self.calibration, np.asarray(d, np.float64), side="left")
        return (1 + at_least) / (len(self.calibration) + 1)

    def assess(self, embeddings, features) -> list[Familiarity]:
        """Familiarity of sounds given :func:`encoder_features` of their spectrograms."""
        emb = embeddings.detach().cpu().numpy() if torch.is_tensor(embeddings) else np.asarray(embeddings)
        d = self.distances(features)
        _, idx = knn_distances(emb, self.embeddings, self.k)
        p, thr, out = self.familiarity_of(d), self.threshold, []
        for i in range(len(emb)):
            votes = np.bincount(self.labels[idx[i]], minlength=len(self.category_names))
            c = int(votes.argmax())
            out.append(Familiarity(self.category_names[c], float(votes[c] / len(idx[i])), float(d[i]) / self.typical,
                                   float(p[i]), bool(p[i] < self.alpha), thr, self.k))  # fmt: skip
        return out

    def assess_spectrograms(self, model, specs: torch.Tensor) -> list[Familiarity]:
        return self.assess(*encoder_features(model, specs))

    def summary(self) -> str:
        return (f"{len(self.embeddings)} reference clips ({self.source}), calibrated on {len(self.calibration)} "
                f"held-out toy clips: unfamiliar above {self.threshold:.2f}x a typical clip's distance "
                f"(alpha {self.alpha})")  # fmt: skip

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"k": self.k, "alpha": self.alpha, "encoder_key": self.encoder_key, "source": self.source,
                "category_names": list(self.category_names)}  # fmt: skip
        tmp = path.with_name(path.name + ".tmp.npz")
        stages = {f"features_{i}": np.asarray(f, np.float16) for i, f in enumerate(self.features)}
        np.savez(tmp, embeddings=self.embeddings.astype(np.float32), labels=self.labels.astype(np.int64),
                 scales=self.scales, calibration=self.calibration, meta=json.dumps(meta), **stages)  # fmt: skip
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Reference:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            feats = [z[f"features_{i}"] for i in range(sum(k.startswith("features_") for k in z.files))]
            return cls(z["embeddings"], z["labels"], feats, z["scales"], np.sort(z["calibration"]), meta["k"],
                       meta["alpha"], meta["encoder_key"], meta["source"], tuple(meta["category_names"]))  # fmt: skip


def encoder_key(model) -> str:
    """A fingerprint of an audio encoder: its config, its front end's settings and its weights."""
    h = hashlib.sha1(json.dumps(model.config, sort_keys=True).encode())
    h.update(repr(model.front_end).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def build_reference(model, train_specs: torch.Tensor, train_labels, calibration_specs: torch.Tensor, source: str,
                    k: int = K, alpha: float = ALPHA, max_reference: int = MAX_REFERENCE, seed: int = 0) -> Reference:  # fmt: skip
    """A reference from spectrograms: the training clips (a random ``max_reference`` of them when there are more)
    and held-out calibration clips that the encoder never trained on."""
    labels = np.asarray(train_labels)
    keep = np.arange(len(labels))
    if len(keep) > max_reference:
        keep = np.sort(np.random.default_rng(seed).choice(len(keep), max_reference, replace=False))
    emb, feats = encoder_features(model, train_specs[torch.as_tensor(keep)])
    _, calib = encoder_features(model, calibration_specs)
    return Reference.fit(emb, labels[keep], feats, calib, k, alpha, encoder_key(model), source)


def reference_from_experiment(model, exp) -> Reference:
    """``s2v demo``'s reference: its own training clips, calibrated on its held-out (validation + test) clips."""
    calib = torch.cat([exp.specs["val"], exp.specs["test"]])
    n = min(len(exp.train), MAX_REFERENCE)
    return build_reference(model, exp.specs["train"], exp.train.label, calib,
                           source=f"{n} of the encoder's {len(exp.train)} training clips")  # fmt: skip


def toy_reference(model, n_reference: int = 400, n_calibration: int = 200, seed: int = REFERENCE_SEED) -> Reference:
    """A reference from fresh toy clips (for an encoder whose training clips are not at hand): ``n_reference`` clips
    stand in for the training clips and ``n_calibration`` others calibrate (built once: the toy clips are cached)."""
    from .data import build_toy_dataset

    ds = build_toy_dataset(n_reference + n_calibration, seed=seed)
    specs = torch.cat([model.front_end(ds.audio[i : i + 256].astype(np.float32)) for i in range(0, len(ds), 256)])
    return build_reference(model, specs[:n_reference], ds.label[:n_reference], specs[n_reference:],
                           source=f"{n_reference} fresh toy clips (seed {seed}) standing in for the training clips")  # fmt: skip


def reference_path(encoder_path: str | Path) -> Path:
    """Where the reference of an encoder file is kept: beside it (``X.safetensors`` -> ``X.familiarity.npz``)."""
    p = Path(encoder_path)
    return p.with_name(p.stem + ".familiarity.npz")


def reference_for(model, encoder_path: str | Path | None = None, log=print) -> Reference:
    """The reference of an audio encoder: the one saved beside its file (``s2v demo`` saves one) if it belongs to
    these weights, else one kept in the data cache, else one built now from fresh toy clips (and kept)."""
    from .config import REPO_ROOT, cache_dir

    key = encoder_key(model)
    beside = reference_path(encoder_path) if encoder_path is not None else None
    cached = cache_dir() / f"familiarity-{key}.npz"
    demo = [root / DEMO_REFERENCE for root in (REPO_ROOT, Path.cwd())]  # a notebook holding the demo's encoder
    for path in (beside, cached, *demo):
        if path is not None and path.exists():
            try:
                ref = Reference.load(path)
            except Exception:  # a damaged or outdated file is rebuilt, never trusted
                continue
            if ref.encoder_key == key:
                return ref
    t0 = time.time()
    ref = toy_reference(model)
    for path in (beside, cached):
        try:
            if path is not None:
                ref.save(path)
                break
        except OSError:
            continue
    log(f"familiarity: built a reference for this encoder from fresh toy clips in {time.time() - t0:.0f} s "
        f"(kept for next time; `s2v demo` saves one from its own training clips)")  # fmt: skip
    return ref


def assess(model, waves, reference: Reference | None = None) -> list[Familiarity]:
    """Familiarity of 16 kHz waveforms ([B, N] or one [N]) for an audio encoder."""
    waves = np.asarray(waves, dtype=np.float32)
    ref = reference or reference_for(model)
    return ref.assess_spectrograms(model, model.front_end(waves[None] if waves.ndim == 1 else waves))


# ----------------------------------------------------------------------------------------------------------------
# `s2v familiarity`: held-out toy clips vs real recordings


def auroc(negatives, positives) -> float:
    """P(a positive scores above a negative), ties counted half (the Mann-Whitney U statistic, normalised)."""
    neg, pos = np.asarray(negatives, np.float64), np.asarray(positives, np.float64)
    if len(neg) == 0 or len(pos) == 0:
        return float("nan")
    allv = np.concatenate([neg, pos])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[len(neg) :].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(neg) * len(pos)))


# The real-world recordings. The development set (speech, synth, desktop) was used while choosing the statistic; the
# fresh set (speech_fresh, synth_fresh) was fixed before anything was measured on it, as an independent check.
SPEECH = {  # set: (voices, texts)
    "speech": (("en", "en-us+f3", "en+m3", "de", "fr+f2", "es", "it+m5", "en+whisper", "en-us+croak", "nl", "pl+f4",
                "pt+m2"),
               ("The quick brown fox jumps over the lazy dog.",
                "Please remember to switch off the lights before you leave the room.",
                "One, two, three, four, five, six, seven, eight.",
                "Hello, can you hear me? I am calling from the station.",
                "It was a bright cold day in April, and the clocks were striking thirteen.",
                "Where did you put the keys to the car?")),
    "speech_fresh": (("sv", "ru+m1", "hi", "fi+f5", "cs+klatt", "en-gb-x-rp+m7", "tr", "hu+f1"),
                     ("Turn left at the next corner and then go straight on.",
                      "My phone number is five five five, one two three four.",
                      "The weather tomorrow will be cloudy with some rain.",
                      "Could you please pass me the salt and the pepper?")),
}  # fmt: skip
SOX = {  # set: {name: (sample rate, sox synthesis arguments)}
    "synth": {
        "alarm_beeps": (44100, "synth 0.25 square 1000 pad 0 0.25 repeat 5 vol 0.5"),
        "siren_sweep": (48000, "synth 3 sine 500-1500 vol 0.5"),
        "white_noise": (44100, "synth 3 whitenoise vol 0.3"),
        "pink_noise": (44100, "synth 3 pinknoise vol 0.3"),
        "brown_noise": (22050, "synth 3 brownnoise vol 0.5"),
        "tremolo_tone": (44100, "synth 3 sine 440 tremolo 6 80 vol 0.5"),
        "plucked_string": (16000, "synth 2 pluck C4 vol 0.5"),
        "major_chord": (44100, "synth 3 sine 261.6 sine 329.6 sine 392 remix - vol 0.5"),
        "phone_ring": (44100, "synth 0.4 sine 440 sine 480 remix - pad 0 0.2 repeat 4 vol 0.5"),
        "log_sweep": (44100, "synth 4 sine 100:8000 vol 0.5"),
        "sawtooth": (44100, "synth 3 sawtooth 220 vol 0.4"),
        "trapezium": (44100, "synth 3 trapezium 150 vol 0.4"),
        "rumble": (44100, "synth 4 brownnoise tremolo 30 90 lowpass 400 vol 0.8"),
        "click_train": (32000, "synth 0.01 square 2000 pad 0 0.19 repeat 14 vol 0.5"),
        "noisy_hum": (44100, "synth 3 sine 100 synth 3 pinknoise mix vol 0.4"),
        "square_warble": (8000, "synth 3 square 600-900 tremolo 3 50 vol 0.4"),
    },
    "synth_fresh": {
        "falling_tone": (44100, "synth 3 sine 2000-200 vol 0.5"),
        "smoke_alarm": (48000, "synth 0.5 sine 3100 pad 0 0.5 repeat 3 vol 0.6"),
        "car_horn": (44100, "synth 1.5 sawtooth 400 sawtooth 500 remix - vol 0.4"),
        "band_noise": (44100, "synth 3 whitenoise bandpass 2000 500 vol 0.5"),
        "mains_hum": (44100, "synth 3 sine 50 sine 100 sine 150 remix - vol 0.5"),
        "morse_beeps": (22050, "synth 0.08 sine 700 pad 0 0.08 repeat 12 vol 0.5"),
        "wobble_bass": (44100, "synth 3 sine 80 tremolo 4 90 vol 0.7"),
        "exp_sweep": (32000, "synth 3 exp 300-3000 vol 0.4"),
        "crackle": (44100, "synth 3 whitenoise tremolo 37 100 highpass 3000 vol 0.4"),
        "organ_chord": (44100, "synth 3 square 220 square 277 square 330 remix - lowpass 2000 vol 0.3"),
        "dial_tone": (8000, "synth 3 sine 350 sine 440 remix - vol 0.5"),
        "rain_like": (44100, "synth 4 pinknoise highpass 1000 tremolo 13 60 vol 0.4"),
    },
}
REAL_KINDS = ("speech", "synth", "desktop", "speech_fresh", "synth_fresh")
FRESH_KINDS = ("speech_fresh", "synth_fresh")
FREEDESKTOP_SOUNDS = Path("/usr/share/sounds/freedesktop/stereo")


def realworld_sounds(folder: str | Path) -> tuple[list[dict], list[str]]:
    """Real-world recordings made on the spot (or installed by Debian packages): ``[{"path", "kind", "name"}]`` and
    notes on what is missing. Kinds: ``speech`` (espeak-ng: voices, texts, speeds), ``synth`` (sox: alarms, noises,
    sweeps, chords), ``desktop`` (the freedesktop sound theme, package sound-theme-freedesktop), and a fresh set of
    each of the first two (``speech_fresh``, ``synth_fresh``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sounds, notes = [], []
    if shutil.which("espeak-ng"):
        for kind, (voices, texts) in SPEECH.items():
            for i, voice in enumerate(voices):
                for j in range(2):
                    n = 2 * i + j
                    path = folder / f"{kind}_{voice.replace('+', '_')}_{j}.wav"
                    speed, pitch = 120 + (37 * n) % 100, 25 + (23 * n) % 60
                    cmd = [
                        "espeak-ng",
                        "-v",
                        voice,
                        "-s",
                        str(speed),
                        "-p",
                        str(pitch),
                        "-w",
                        str(path),
                        texts[n % len(texts)],
                    ]
                    if subprocess.run(cmd, capture_output=True).returncode == 0 and path.exists():
                        sounds.append({"path": str(path), "kind": kind, "name": path.stem})
    else:
        notes.append("no speech: espeak-ng is not installed (apt-get install espeak-ng)")
    if shutil.which("sox"):
        for kind, table in SOX.items():
            for name, (rate, args) in table.items():
                path = folder / f"{name}.wav"
                r = subprocess.run(["sox", "-n", "-r", str(rate), str(path), *args.split()], capture_output=True)
                if r.returncode == 0 and path.exists():
                    sounds.append({"path": str(path), "kind": kind, "name": name})
    else:
        notes.append("no synthesised sounds: sox is not installed (apt-get install sox)")
    desktop = sorted(FREEDESKTOP_SOUNDS.glob("*.oga"))
    sounds += [{"path": str(p), "kind": "desktop", "name": p.stem} for p in desktop]
    if not desktop:
        notes.append(f"no desktop sounds: {FREEDESKTOP_SOUNDS} is empty (apt-get install sound-theme-freedesktop)")
    return sounds, notes


def write_toy_files(ds, folder: str | Path, rates=TEST_RATES) -> list[dict]:
    """Toy clips as a user's files would be: 16-bit wav at several sample rates, every other one in stereo."""
    import soundfile as sf

    from .audio import resample

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(len(ds)):
        rate = rates[i % len(rates)]
        wave = resample(ds.audio[i].astype(np.float32), tw.SAMPLE_RATE, rate)
        data = np.stack([wave, wave], 1) if i % 2 else wave
        path = folder / f"toy_{i:04d}_{rate}.wav"
        sf.write(path, np.clip(data, -1, 1), rate, subtype="PCM_16")
        out.append({"path": str(path), "kind": "toy", "name": path.stem, "label": int(ds.label[i]), "rate": rate})
    return out


def in_the_toy_room(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real sound placed in the toy world's room: its level drawn from the toy sources' range, the room's floor
    added. (The hardest real set: neither level nor background tell it from a toy clip.)"""
    x = np.asarray(wave, np.float64)[: tw.N_SAMPLES]
    x = np.resize(x, tw.N_SAMPLES) if len(x) < tw.N_SAMPLES else x  # tiled, as the front end would
    rms = np.sqrt(np.mean(x**2)) + 1e-12
    level = rng.uniform(*tw.LOUDNESS_RANGE_DB)
    return (x / rms * 10 ** (level / 20) + tw.noise_floor(rng)).astype(np.float32)


def loudest_window(wave: np.ndarray, seconds: float) -> np.ndarray:
    """The ``seconds``-long stretch of a waveform with the most energy."""
    n = max(1, int(round(seconds * tw.SAMPLE_RATE)))
    if n >= len(wave):
        return wave
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(wave, np.float64) ** 2)])
    start = int(np.argmax(energy[n:] - energy[:-n]))
    return wave[start : start + n]


def _alternatives(ref: Reference, toy: tuple, real: tuple) -> dict:
    """AUROC (toy vs real) of the other statistics tried: the audio embedding alone (the k-NN distance first tried,
    Euclidean or cosine; Mahalanobis to the nearest class; the embedding's norm) and each backbone stage alone."""
    (toy_emb, toy_feats), (real_emb, real_feats) = toy, real
    e, y = ref.embeddings.astype(np.float64), ref.labels
    out = {
        "embedding_knn10_euclidean": auroc(knn_distances(toy_emb, e)[0], knn_distances(real_emb, e)[0]),
        "embedding_knn10_cosine": auroc(knn_distances(toy_emb, e, cosine=True)[0], knn_distances(real_emb, e, cosine=True)[0]),
    }  # fmt: skip
    cats = [c for c in range(len(ref.category_names)) if (y == c).any()]
    cents = np.stack([e[y == c].mean(0) for c in cats])
    prec = np.linalg.inv(np.cov((e - cents[np.searchsorted(cats, y)]).T) + 1e-3 * np.eye(e.shape[1]))

    def mahalanobis(q):
        diff = np.asarray(q, np.float64)[:, None] - cents[None]
        return np.einsum("bcd,de,bce->bc", diff, prec, diff).min(1)

    norm0 = np.median(np.linalg.norm(e, axis=1))
    out["embedding_mahalanobis"] = auroc(mahalanobis(toy_emb), mahalanobis(real_emb))
    out["embedding_norm"] = auroc(*(np.abs(np.linalg.norm(q, axis=1) - norm0) for q in (toy_emb, real_emb)))
    for s, (name, ref_f) in enumerate(zip(STAGES, ref.features)):
        d = [knn_distances(q[s], ref_f, ref.k, cosine=True)[0] for q in (toy_feats, real_feats)]
        out[f"{name}_alone"] = auroc(*d)
    k1 = Reference(ref.embeddings, ref.labels, ref.features, ref.scales, ref.calibration, k=1)
    out["stages_k1"] = auroc(k1.distances(toy_feats), k1.distances(real_feats))
    return out


def _histogram(groups: dict, threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    values = np.concatenate([v for v in groups.values() if len(v)])
    bins = np.geomspace(max(values.min(), 1e-2) * 0.9, values.max() * 1.1, 50)
    for name, v in groups.items():
        if len(v):
            ax.hist(v, bins=bins, alpha=0.55, label=f"{name} ({len(v)})")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"unfamiliar above {threshold:.2f}x")
    ax.set_xscale("log")
    ax.set_xlabel("distance to the training clips (x a typical held-out toy clip's)")
    ax.set_ylabel("sounds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _select(features: tuple, mask: np.ndarray) -> tuple:
    emb, feats = features
    return emb[mask], [f[mask] for f in feats]


def run_familiarity(out: str | Path, encoder: str | Path = "runs/demo/audio_encoder.safetensors", n_toy: int = 400,
                    force: bool = False, log=print) -> dict:  # fmt: skip
    """``s2v familiarity``: held-out toy clips vs real recordings, both read from files as ``s2v generate`` reads
    them; the AUROC and the rates of "unfamiliar" (see the module docstring for all that is measured)."""
    from .audio import MIN_SECONDS, AudioError, fit_length, read_sound
    from .audio_encoder import load_audio_encoder
    from .config import setup_torch
    from .data import build_toy_dataset
    from .demo import prepare_out
    from .progress import progress

    t0 = time.time()
    setup_torch()
    out = prepare_out(out, force)
    model = load_audio_encoder(encoder)
    ref = reference_for(model, encoder, log=log)
    fe = model.front_end
    rows, refused, waves = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        toy_files = write_toy_files(build_toy_dataset(n_toy, seed=TEST_SEED), Path(tmp) / "toy")
        real_files, notes = realworld_sounds(Path(tmp) / "real")
        if not real_files:
            raise ValueError("no real-world recordings could be made: " + "; ".join(notes))
        for item in progress(toy_files + real_files, desc="reading sounds"):
            try:  # exactly as `s2v generate` reads a file
                rec = read_sound(item["path"], fe.sample_rate, max_seconds=fe.clip_seconds, min_seconds=MIN_SECONDS)
            except AudioError as err:
                refused.append({"kind": item["kind"], "name": item["name"], "reason": err.reason})
                continue
            waves.append(rec.wave)
            rows.append({**item, "file_rate": rec.file_rate, "seconds": round(rec.seconds, 3)})

    def spectrograms(ws):
        return fe(np.stack([fit_length(torch.as_tensor(w), fe.n_samples).numpy() for w in ws]))

    features = encoder_features(model, spectrograms(waves))
    fam = ref.assess(*features)
    for r, f in zip(rows, fam):
        r.update(distance=round(f.distance, 4), familiarity=round(f.familiarity, 4), nearest=f.nearest,
                 unfamiliar=f.unfamiliar)  # fmt: skip
    kind = np.array([r["kind"] for r in rows])
    rate = np.array([r.get("rate", 0) for r in rows])
    dist = np.array([f.distance for f in fam])
    unf = np.array([f.unfamiliar for f in fam])
    is_toy, is_real = kind == "toy", kind != "toy"
    kinds = [k for k in REAL_KINDS if (kind == k).any()]
    # the real sounds again, placed in the toy world's room (toy level and noise floor)
    rng = np.random.default_rng(0)
    room = ref.assess_spectrograms(
        model, fe(np.stack([in_the_toy_room(w, rng) for w, k in zip(waves, kind) if k != "toy"]))
    )
    room_dist = np.array([f.distance for f in room])
    long_enough = np.array([r["seconds"] >= fe.clip_seconds - 1e-3 for r in rows])
    # toy clips cut short (their loudest stretch) and tiled to the clip length, as a short recording would be
    toy_waves = [w for w, k in zip(waves, kind) if k == "toy"]
    toy_names = [tw.CATEGORY_NAMES[r["label"]] for r in rows if r["kind"] == "toy"]
    short = {}
    for seconds in (0.1, 0.25, 0.5, 1.0, fe.clip_seconds):
        f = ref.assess_spectrograms(model, spectrograms([loudest_window(w, seconds) for w in toy_waves]))
        short[f"{seconds:g}"] = {"unfamiliar": float(np.mean([x.unfamiliar for x in f])),
                                 "nearest_is_true_category": float(np.mean([n == x.nearest for n, x in zip(toy_names, f)]))}  # fmt: skip
    fresh = np.isin(kind, FRESH_KINDS)
    m = {
        "auroc": auroc(dist[is_toy], dist[is_real]),
        "auroc_by_kind": {k: auroc(dist[is_toy], dist[kind == k]) for k in kinds},
        "auroc_fresh": auroc(dist[is_toy], dist[fresh]),
        "auroc_real_at_least_clip_length": auroc(dist[is_toy], dist[is_real & long_enough]),
        "auroc_in_the_toy_room": auroc(dist[is_toy], room_dist),
        "threshold_distance": ref.threshold,
        "alpha": ref.alpha,
        "k": ref.k,
        "unfamiliar_rate": {
            "toy": float(unf[is_toy].mean()),
            **{f"toy_{r}_hz": float(unf[is_toy & (rate == r)].mean()) for r in TEST_RATES},
            "real": float(unf[is_real].mean()),
            **{k: float(unf[kind == k].mean()) for k in kinds},
            "real_in_the_toy_room": float(np.mean([f.unfamiliar for f in room])),
        },
        "toy_nearest_is_true_category": float(np.mean([n == f.nearest for n, f in zip(toy_names, np.array(fam)[is_toy])])),
        "median_distance": {"toy": float(np.median(dist[is_toy])), "real": float(np.median(dist[is_real])),
                            "real_in_the_toy_room": float(np.median(room_dist))},
        "short_clips": short,
        "min_seconds": MIN_SECONDS,
        "alternatives_auroc": _alternatives(ref, _select(features, is_toy), _select(features, is_real)),
        "n": {"reference": len(ref.embeddings), "calibration": len(ref.calibration), "toy": int(is_toy.sum()),
              **{k: int((kind == k).sum()) for k in REAL_KINDS}},
        "refused": refused,
        "notes": notes,
        "reference": ref.source,
        "encoder": str(encoder),
        "seconds": time.time() - t0,
    }  # fmt: skip
    with open(out / "scores.csv", "w", newline="") as f:
        cols = ["kind", "name", "file_rate", "seconds", "distance", "familiarity", "nearest", "unfamiliar"]
        w = csv.DictWriter(f, cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    groups = {
        "held-out toy clips": dist[is_toy],
        **{k: dist[kind == k] for k in kinds},
        "real, in the toy room": room_dist,
    }
    _histogram(groups, ref.threshold, out / "familiarity.png")
    (out / "metrics.json").write_text(json.dumps(m, indent=2) + "\n")
    return m


def summary(m: dict) -> str:
    n, u = m["n"], m["unfamiliar_rate"]
    kinds = ", ".join(f"{k} {v:.3f}" for k, v in m["auroc_by_kind"].items())
    counts = ", ".join(f"{n[k]} {k}" for k in REAL_KINDS if n.get(k))
    by_rate = ", ".join(f"{r / 1000:g} kHz {u['toy_' + str(r) + '_hz']:.1%}" for r in TEST_RATES)
    by_kind = ", ".join(f"{k} {u[k]:.0%}" for k in REAL_KINDS if k in u)
    short = "  ".join(f"{s} s: {v['unfamiliar']:.0%} unfamiliar, {v['nearest_is_true_category']:.0%} right"
                      for s, v in m["short_clips"].items())  # fmt: skip
    alts = ", ".join(f"{k} {v:.3f}" for k, v in m["alternatives_auroc"].items())
    lines = [
        f"familiarity = k-NN distance (k={m['k']}) of the encoder's stage features to {n['reference']} reference clips "
        f"({m['reference']}), calibrated on {n['calibration']} held-out toy clips: unfamiliar above "
        f"{m['threshold_distance']:.2f}x a typical clip's (alpha {m['alpha']})",
        f"AUROC held-out toy clips ({n['toy']}, read from files at {len(TEST_RATES)} rates) vs real recordings "
        f"({counts}): {m['auroc']:.3f}",
        f"  by kind: {kinds}; fresh set only {m['auroc_fresh']:.3f}; real >= clip length only "
        f"{m['auroc_real_at_least_clip_length']:.3f}; real placed in the toy room {m['auroc_in_the_toy_room']:.3f}",
        f"unfamiliar: toy {u['toy']:.1%} ({by_rate}) | real {u['real']:.1%} ({by_kind}; in the toy room "
        f"{u['real_in_the_toy_room']:.0%}); toy clips' nearest category right {m['toy_nearest_is_true_category']:.1%}",
        f"toy clips cut short and tiled: {short}",
        f"other statistics (AUROC): {alts}",
        f"refused (shorter than {m['min_seconds']:g} s or unreadable): {len(m['refused'])} real sounds; "
        f"{m['seconds']:.0f} s",
    ]
    return "\n".join(lines + [f"note: {x}" for x in m["notes"]])
