"""``s2v control``: the paper's controllability, measured on ground truth (paper guide "Controllability").

The paper shows that edits of the sound or of the latent change the picture as expected; it shows this with
examples. The toy world's judge (``metrics.ToyJudge``) reads a picture's categories and each object's size, so
here every edit is *measured* on held-out sounds (world seed :data:`CONTROL_SEED`, never used for training):

* **volume** - a source made louder against the fixed ambient floor (``manipulate.ToyStems.render``) over the
  world's whole loudness range; ``volume_size_spearman``: Spearman's rank correlation between the gain and the judged
  size of the sound's object, per sound (the same generator noise at every gain), averaged over sounds; and the same
  for a gain of the *whole* clip, floor included (``volume_size_spearman_whole_clip``): the paper's front end measures
  power against an absolute floor (``log(S + 1e-7)`` of a density), so a whole-clip gain is visible to it too;
  ``frontend_dz_per_db_{toy,paper}``: how much the z-scored spectrogram itself changes per dB of whole-clip gain;
* **mixing** - two held-out sources of different categories in one room; ``mix_both_rate``: share of pictures drawn
  from the mixture in which the judge recognises *both* categories, next to ``mix_both_rate_single``: the same test
  on pictures drawn from each sound alone (how often the other category shows up anyway: the false-positive rate);
  ``mix_gain_size_spearman``: with one component's gain changed, rank correlation of that gain with its object's size;
* **interpolation** - from a sound's embedding to another sound's (audio <-> audio) or to a picture's image embedding
  (audio <-> image) of another category; ``interp_monotonic_rate``: share of paths along which the judged probability
  of the target category never falls by more than ``interp_tolerance`` from one step to the next and ends above
  where it started;
* **editing** - an image embedding moved along a sound direction ``alpha * (embed(loud) - embed(quiet))``, loud and
  quiet being one held-out sound of the picture's category at the top and bottom of the world's loudness range;
  ``edit_direction_rate``: share of edits (``+alpha`` and ``-alpha``) that change the judged size the intended way
  relative to the unedited picture (same generator noise).

The audio encoder is trained by the command itself on a world with two-source clips (``p_mixture``), so that it
has heard mixtures; everything is deterministic by seed. The settings (guidance 4, the gap shift, two samples per
level) were chosen on the tuning seed 0; reported seeds are 1, 2, 3, ... and each measures other held-out sounds
with an encoder trained on another split with another training seed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import manipulate as mp
from . import toyworld as tw
from .geometry import rank_correlation

CONTROL_SEED = 5000  # held-out sounds (training 0, pre-training 1000, SSL evaluation 4000)
PRESENT = 0.5  # the judge "recognises" a category at probability >= 0.5 (as metrics.judged_scores)


@dataclass
class ControlConfig:
    """``s2v control``'s settings (about 3-4 minutes on two idle cores: most of it training and sampling)."""

    n_train: int = 2400
    n_val: int = 160
    n_test: int = 160
    epochs: int = 3
    p_mixture: float = 0.3  # share of two-source training clips
    pairing: str = "top1"  # SSL top-1 frame (paper guide step 2), as `s2v demo`
    generator: str = "toy-diffusion"
    sampling_steps: int = 10
    guidance: float = 4.0  # classifier-free guidance (the generator's default is 2): sizes follow the embedding more
    close_gap: bool = True  # move audio embeddings by the validation gap vector (notebook 06) before generating
    n_volume: int = 24  # held-out sounds swept over the loudness range
    volume_samples: int = 2  # pictures per sound and level (judged sizes averaged)
    volume_levels_db: tuple[float, ...] = tuple(float(x) for x in np.linspace(*tw.LOUDNESS_RANGE_DB, 5))  # dBFS
    n_mix: int = 40  # mixtures of two held-out sounds
    mix_gains_db: tuple[float, ...] = (-9.0, 0.0, 9.0)  # gain of the second component
    n_interp: int = 24  # interpolation paths (half audio <-> audio, half audio <-> image)
    interp_steps: int = 6
    interp_tolerance: float = 0.1
    n_edit: int = 24  # pictures edited along a sound direction (+alpha and -alpha: 2 edits each)
    edit_alpha: float = 1.0
    edit_samples: int = 2
    seed: int = 0  # generator noise and random choices (pairs, paths) of the measurements
    heldout_seed: int = CONTROL_SEED
    seeds: tuple[int, ...] = (1,)  # reported seeds: each another training split/seed and other held-out sounds


# ----------------------------------------------------------------------------------------------------------------
# the models the measurements use


@dataclass
class Controller:
    """A trained audio encoder with the frozen generator, image encoder and judge: sound or embedding -> picture ->
    judged attributes."""

    encoder: torch.nn.Module
    generator: torch.nn.Module
    judge: torch.nn.Module
    image_encoder: torch.nn.Module
    steps: int = 10
    seed: int = 0
    gap: torch.Tensor | None = None  # mean(image) - mean(audio) on validation clips, added to audio embeddings
    guidance: float = 2.0  # classifier-free guidance of the diffusion generator (its default)

    @classmethod
    def load(cls, encoder, generator: str = "toy-diffusion", steps: int = 10, seed: int = 0, gap=None,
             guidance: float = 2.0) -> Controller:  # fmt: skip
        from .registry import load_generator, load_image_encoder, load_judge

        gap = None if gap is None else torch.as_tensor(gap, dtype=torch.float32)
        return cls(encoder, load_generator(generator), load_judge(), load_image_encoder("toy"), steps, seed, gap,
                   guidance)  # fmt: skip

    @classmethod
    def from_config(cls, encoder, cfg: ControlConfig, gap=None) -> Controller:
        return cls.load(encoder, cfg.generator, cfg.sampling_steps, cfg.seed, gap if cfg.close_gap else None,
                        cfg.guidance)  # fmt: skip

    def embed(self, waves) -> torch.Tensor:
        """What the generator is fed for raw waveforms [B, N]: their audio embeddings, moved by the modality-gap
        vector ``gap`` when there is one (notebook 06: measured on validation clips, it puts the audio embeddings
        where the generator has seen image embeddings)."""
        e = self.encoder.embed(np.asarray(waves, dtype=np.float32))
        return e if self.gap is None else e + self.gap

    def draw(self, embeds: torch.Tensor, samples: int = 1) -> np.ndarray:
        """Pictures for embeddings [n, m, D] -> uint8 [n, m, samples, H, W, 3]. Column j of every row is drawn in
        one call with the same seed, so row i gets the same generator noise in every column: along a row only the
        embedding changes."""
        e = torch.as_tensor(embeds, dtype=torch.float32)
        kw = {"steps": self.steps, "guidance": self.guidance} if hasattr(self.generator, "make_scheduler") else {}
        cols = [self.generator.generate(e[:, j], n=samples, seed=self.seed, **kw) for j in range(e.shape[1])]
        return np.stack(cols, axis=1)

    def read(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The judge's reading of pictures [..., H, W, 3]: probs / size / shade / count, each [..., C]."""
        return self.judge.judge(images)


def heldout_stems(n: int, seed: int = CONTROL_SEED, start: int = 0) -> list[mp.ToyStems]:
    """n held-out single-source clips taken apart (source, floor), categories in turn 0, 1, ..., C-1, 0, ..."""
    cfg = tw.WorldConfig(p_mixture=0.0)
    return [mp.toy_stems(seed, start + i, cfg, category=(start + i) % tw.N_CATEGORIES) for i in range(n)]


def best_frame(stems: mp.ToyStems) -> np.ndarray:
    """The frame of a clip that shows its source with the fewest other objects (ground truth; evaluation only)."""
    clip = stems.clip
    shows = np.array(clip.visible, dtype=float)
    crowd = np.array([len(d) for d in clip.distractors], dtype=float)
    return clip.frames[int(np.argmax(shows * 10 - crowd))]


# ----------------------------------------------------------------------------------------------------------------
# the four measurements


def _of(values: np.ndarray, category) -> np.ndarray:
    """Each picture's value for one category per row: values [n, ..., C], category [n] -> [n, ...]."""
    cat = np.asarray(category).reshape(-1, *([1] * (values.ndim - 1)))
    return np.take_along_axis(values, np.broadcast_to(cat, (*values.shape[:-1], 1)), -1)[..., 0]


def measure_volume(ctrl: Controller, stems: list[mp.ToyStems], levels_db=ControlConfig.volume_levels_db,
                   samples: int = 1) -> dict:  # fmt: skip
    """Each sound set to every level of ``levels_db`` two ways: its source louder or quieter against the fixed floor
    (``ToyStems.render``), and the whole clip, floor included, by the same gain (``apply_gain``; samples beyond
    full scale are clipped by the front end, as the authors clip). Judged size of its object (mean over ``samples``
    pictures, the same generator noise at every level). Returns the metrics and the figure's arrays."""
    levels = np.asarray(levels_db, dtype=float)
    gains = levels[None] - np.array([s.loudness_db for s in stems])[:, None]  # [n, L]
    cats = np.array([s.category for s in stems])
    out, per_clip = {}, {}
    for kind, render in (("", lambda s, g: s.render(g)),
                         ("_whole_clip", lambda s, g: mp.apply_gain(s.render(), g, on_clip="keep"))):  # fmt: skip
        waves = [render(s, g) for s, row in zip(stems, gains) for g in row]
        images = ctrl.draw(ctrl.embed(waves).view(len(stems), len(levels), -1), samples)
        reading = ctrl.read(images)
        size, present = _of(reading["size"], cats).mean(-1), _of(reading["probs"], cats)
        rho = np.array([rank_correlation(g, s) if np.ptp(s) > 0 else np.nan for g, s in zip(gains, size)])
        per_clip[f"volume_size_spearman{kind}"] = rho
        out.update({
            f"volume_size_spearman{kind}": float(np.nanmean(rho)),
            f"volume_size_px_per_db{kind}": float(np.polyfit(levels, size.mean(0), 1)[0]),
            f"volume_category_rate{kind}": float((present >= PRESENT).mean()),
        })  # fmt: skip
        if not kind:
            out.update(_levels=levels, _size=size, _images=images[:, :, 0], _waves=waves)
    out["volume_size_px_per_db_truth"] = float((tw.SIZE_RANGE[1] - tw.SIZE_RANGE[0]) / np.ptp(tw.LOUDNESS_RANGE_DB))
    out["_per_clip"] = per_clip
    return out


def gain_sensitivity(front_end, waves, gains_db=(-20.0, -10.0, 10.0)) -> float:
    """Mean absolute change of the z-scored spectrogram per dB of whole-clip gain, averaged over ``waves`` and
    ``gains_db`` (0 = a whole-clip gain is invisible to the front end). Samples beyond full scale are clipped by the
    front end, as the authors clip."""
    waves = np.asarray(waves, dtype=np.float32)
    base = front_end(waves)
    per_db = []
    for g in gains_db:
        other = front_end(waves * np.float32(mp.db_to_gain(g)))
        per_db.append(float((other - base).abs().mean()) / abs(g))
    return float(np.mean(per_db))


def frontend_loudness(n: int = 32, seed: int = CONTROL_SEED) -> dict:
    """``frontend_dz_per_db_toy`` / ``_paper``: :func:`gain_sensitivity` of both presets on held-out toy clips (the
    paper preset reads them tiled to 10 s, as the authors tile short clips), and, for contrast, of the same formula
    on raw |STFT|^2, far above the 1e-7 floor (``frontend_dz_per_db_raw_power``)."""
    from .audio import FrontEnd

    waves = np.stack([tw.make_clip(seed, 20_000 + i).audio for i in range(n)])
    toy = FrontEnd.preset("toy")
    raw = _RawPower(toy)
    return {"frontend_dz_per_db_toy": gain_sensitivity(toy, waves),
            "frontend_dz_per_db_paper": gain_sensitivity(FrontEnd.preset("paper"), waves),
            "frontend_dz_per_db_raw_power": gain_sensitivity(raw, waves)}  # fmt: skip


class _RawPower:
    """The toy front end without the density scaling (raw |STFT|^2, ~1e6 times larger): the floor is never reached,
    so the per-clip z-score erases a whole-clip gain. Only for the contrast in :func:`frontend_loudness`."""

    def __init__(self, fe):
        self.fe = fe

    def __call__(self, waves):
        import torch as _torch

        s = self.fe.power_density(waves) * (self.fe.sample_rate * self.fe.nperseg)  # back to ~|STFT|^2
        logs = _torch.log(s + 1e-7)
        mu, sd = logs.mean(dim=(1, 2), keepdim=True), logs.std(dim=(1, 2), keepdim=True, unbiased=False)
        return ((logs - mu) / (sd + 1e-9))[:, None]


def mixture_pairs(stems: list[mp.ToyStems], n: int, seed: int = 0) -> list[tuple[int, int]]:
    """n pairs (i, j) of sounds of different categories, drawn at random."""
    rng = np.random.default_rng([seed, 7])
    pairs = []
    while len(pairs) < n:
        i, j = (int(x) for x in rng.choice(len(stems), 2, replace=False))
        if stems[i].category != stems[j].category:
            pairs.append((i, j))
    return pairs


def measure_mixing(ctrl: Controller, stems: list[mp.ToyStems], pairs, gains_db=ControlConfig.mix_gains_db) -> dict:
    """Pictures from each pair's mixture (one room, two sources), from each sound alone, and from the mixture with the
    second component's gain changed; the judge says which categories each shows and how big."""
    gains = np.asarray(gains_db, dtype=float)
    ca = np.array([stems[i].category for i, _ in pairs])
    cb = np.array([stems[j].category for _, j in pairs])
    singles = [w for i, j in pairs for w in (stems[i].render(), stems[j].render())]
    mixes = [stems[i].mixed_with(stems[j], g) for i, j in pairs for g in gains]
    emb = ctrl.embed(singles + mixes)
    e_single = emb[: len(singles)].view(len(pairs), 2, -1)
    e_mix = emb[len(singles) :].view(len(pairs), len(gains), -1)
    # for comparison, a mixture made in the latent: z_a + z_b - (mean embedding), no waveform involved
    e_latent = (e_single.sum(1) - e_single.reshape(-1, e_single.shape[-1]).mean(0))[:, None]
    images = ctrl.draw(torch.cat([e_single, e_mix, e_latent], 1))[:, :, 0]  # [n, 2 + G + 1, H, W, 3]
    latent, images = images[:, -1], images[:, :-1]
    reading = ctrl.read(images)
    pa, pb = _of(reading["probs"], ca) >= PRESENT, _of(reading["probs"], cb) >= PRESENT
    p_latent = ctrl.read(latent)["probs"]
    both_latent = (_of(p_latent, ca) >= PRESENT) & (_of(p_latent, cb) >= PRESENT)
    both = pa & pb  # [n, 2 + G]
    equal = 2 + int(np.argmin(np.abs(gains)))  # the column of the mixture at the gain nearest 0 dB
    size_b = _of(reading["size"][:, 2:], cb)
    per_pair = [rank_correlation(gains, s) for s in size_b if np.ptp(s) > 0]
    return {
        "_per_clip": {"mix_both_rate": both[:, equal].astype(float), "mix_both_rate_single": both[:, :2].mean(1),
                      "mix_both_rate_latent_sum": both_latent.astype(float)},
        "mix_both_rate": float(both[:, equal].mean()),
        "mix_both_rate_single": float(both[:, :2].mean()),
        "mix_first_rate": float(pa[:, equal].mean()),
        "mix_second_rate": float(pb[:, equal].mean()),
        "mix_both_rate_by_gain": {f"{g:+g} dB": float(both[:, 2 + k].mean()) for k, g in enumerate(gains)},
        "mix_both_rate_latent_sum": float(both_latent.mean()),
        "mix_gain_size_spearman": float(np.mean(per_pair)) if per_pair else float("nan"),
        "_images": images, "_both": both, "_gains": gains, "_categories": np.stack([ca, cb], 1),
        "_waves": [mixes[k * len(gains) + equal - 2] for k in range(min(len(pairs), 4))],
    }  # fmt: skip


def two_source_frames(n: int, seed: int = CONTROL_SEED, start: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """n held-out frames that show two sounding objects (and no silent one): (frames [n, H, W, 3], categories [n, 2])."""
    cfg = tw.WorldConfig(p_mixture=1.0, p_distractor=0.0)
    frames, cats, i = [], [], start
    while len(frames) < n:
        clip = tw.make_clip(seed, i, cfg)
        i += 1
        both = [f for f in range(len(clip.frames)) if all(s.visible[f] for s in clip.sources)]
        if both:
            frames.append(clip.frames[both[len(both) // 2]])
            cats.append([s.category for s in clip.sources])
    return np.stack(frames), np.array(cats)


def measure_mixing_oracle(ctrl: Controller, n: int, seed: int = CONTROL_SEED) -> dict:
    """A reference for ``mix_both_rate`` (not a bound): pictures drawn from the image embeddings of real frames that show two
    objects. How often does the judge recognise both in those frames, and in the generator's pictures of them?"""
    frames, cats = two_source_frames(n, seed)
    images = ctrl.draw(ctrl.image_encoder.encode(frames)[:, None])[:, 0, 0]
    both = {}
    for name, x in (("real", frames), ("oracle", images)):
        probs = ctrl.read(x)["probs"]
        both[name] = (_of(probs, cats[:, 0]) >= PRESENT) & (_of(probs, cats[:, 1]) >= PRESENT)
    return {"_per_clip": {"mix_both_rate_oracle": both["oracle"].astype(float),
                          "mix_both_rate_real_frames": both["real"].astype(float)},
            "mix_both_rate_oracle": float(both["oracle"].mean()), "mix_both_rate_real_frames": float(both["real"].mean()),
            "_frames": frames, "_images": images}  # fmt: skip


def monotonic(p: np.ndarray, tolerance: float) -> np.ndarray:
    """Per row of p [n, K]: does it rise monotonically within ``tolerance`` (no step falls by more than it) and end
    above where it started?"""
    p = np.asarray(p, dtype=float)
    return (np.diff(p, axis=-1) >= -tolerance).all(-1) & (p[..., -1] > p[..., 0])


def measure_interpolation(ctrl: Controller, stems: list[mp.ToyStems], n: int, steps: int = 6,
                          tolerance: float = 0.1, seed: int = 0) -> dict:  # fmt: skip
    """n paths from a sound's embedding to another sound's (first half) or to the image embedding of a frame of
    another sound's clip (second half, audio <-> image); judged probability of the end point's category."""
    rng = np.random.default_rng([seed, 11])
    weights = np.linspace(0.0, 1.0, steps)
    starts, ends, targets, kinds = [], [], [], []
    audio = ctrl.embed([s.render() for s in stems])
    for k in range(n):
        i, j = (int(x) for x in rng.choice(len(stems), 2, replace=False))
        while stems[i].category == stems[j].category:
            j = int(rng.integers(len(stems)))
        kind = "audio-audio" if k < (n + 1) // 2 else "audio-image"
        end = audio[j] if kind == "audio-audio" else ctrl.image_encoder.encode(best_frame(stems[j])[None])[0]
        starts.append(audio[i])
        ends.append(end)
        targets.append(stems[j].category)
        kinds.append(kind)
    paths = torch.stack([mp.interpolate(a, b, weights) for a, b in zip(starts, ends)])  # [n, K, D]
    images = ctrl.draw(paths)[:, :, 0]
    cats = np.array(targets)
    p = _of(ctrl.read(images)["probs"], cats)
    ok = monotonic(p, tolerance)
    kinds = np.array(kinds)
    return {
        "_per_clip": {"interp_monotonic_rate": ok.astype(float)},
        "interp_monotonic_rate": float(ok.mean()),
        **{f"interp_monotonic_rate_{k.replace('-', '_')}": float(ok[kinds == k].mean()) for k in np.unique(kinds)},
        "interp_tolerance": tolerance,
        "interp_target_prob_start_end": [float(p[:, 0].mean()), float(p[:, -1].mean())],
        "_images": images, "_p": p, "_weights": weights, "_kinds": kinds, "_targets": cats,
    }  # fmt: skip


def measure_editing(ctrl: Controller, stems: list[mp.ToyStems], sounds: list[mp.ToyStems], alpha: float = 1.0,
                    samples: int = 1) -> dict:  # fmt: skip
    """Each picture (the best frame of a held-out clip) moved along the loud-minus-quiet direction of another
    held-out sound of its category (that sound at the top and the bottom of the world's loudness range); judged
    size at -alpha, 0, +alpha (mean over ``samples`` pictures)."""
    lo, hi = tw.LOUDNESS_RANGE_DB
    by_cat = {s.category: s for s in sounds}
    z = ctrl.image_encoder.encode(np.stack([best_frame(s) for s in stems]))
    directions = []
    for s in stems:
        ref = by_cat[s.category]
        loud, quiet = ref.render(hi - ref.loudness_db), ref.render(lo - ref.loudness_db)
        directions.append(mp.sound_direction(ctrl.encoder, loud, quiet))
    alphas = [-alpha, 0.0, alpha]
    edited = torch.stack([mp.edit_embedding(zi, d, alphas) for zi, d in zip(z, directions)])  # [n, 3, D]
    images = ctrl.draw(edited, samples)
    cats = np.array([s.category for s in stems])
    size = _of(ctrl.read(images)["size"], cats).mean(-1)
    up, down = size[:, 2] > size[:, 1], size[:, 0] < size[:, 1]
    return {
        "_per_clip": {"edit_direction_rate": np.stack([up, down], 1).mean(1)},
        "edit_direction_rate": float(np.concatenate([up, down]).mean()),
        "edit_louder_rate": float(up.mean()),
        "edit_quieter_rate": float(down.mean()),
        "edit_size_change_px": [float((size[:, 0] - size[:, 1]).mean()), float((size[:, 2] - size[:, 1]).mean())],
        "edit_alpha": alpha,
        "edit_direction_norm": float(torch.stack(directions).norm(dim=1).mean()),
        "edit_image_embedding_norm": float(z.norm(dim=1).mean()),
        "_images": images[:, :, 0], "_size": size, "_frames": np.stack([best_frame(s) for s in stems]),
        "_alphas": alphas,
    }  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# the command


def train_control_encoder(cfg: ControlConfig, checkpoint=None, seed: int | None = None) -> tuple:
    """The audio encoder the measurements use: the paper's loss, trained on a world with two-source clips (split and
    training seed ``seed``, default the first reported seed). Returns (variant, gap vector: mean image - mean audio
    embedding of the *validation* clips, the image side from their SSL top-1 frames; ``experiment.gap_vector``)."""
    from .experiment import gap_vector, prepare_experiment, train_variant

    world = tw.WorldConfig(p_mixture=cfg.p_mixture)
    exp = prepare_experiment(cfg.n_train, cfg.n_val, cfg.n_test, seed=cfg.seeds[0] if seed is None else seed,
                             ssl_select=cfg.pairing == "top1", world=world)  # fmt: skip
    v = train_variant(exp, "infonce_l2", cfg.pairing, cfg.epochs, checkpoint=checkpoint, desc="audio encoder (control)")
    return v, gap_vector(exp, v)


def save_control_encoder(model, gap: torch.Tensor, path: str | Path, info: dict) -> Path:
    """The encoder as safetensors, its gap vector in the file's metadata (``info["gap"]``)."""
    from .audio_encoder import save_audio_encoder

    return save_audio_encoder(model, path, {**info, "gap": [round(float(x), 6) for x in gap]})


def load_control_encoder(path: str | Path) -> tuple:
    """(encoder, gap vector) from :func:`save_control_encoder`'s file."""
    from safetensors import safe_open

    from .audio_encoder import load_audio_encoder

    model = load_audio_encoder(path)
    with safe_open(str(path), framework="pt") as f:
        info = json.loads((f.metadata() or {}).get("info", "{}"))
    return model, torch.tensor(info["gap"]) if "gap" in info else None


QUICK = {"n_train": 800, "epochs": 2, "pairing": "middle"}  # notebook 05 without a saved run: well under a minute


def notebook_encoder(run: str | Path = "runs/control", quick: dict | None = None) -> tuple:
    """The audio encoder for notebook 05: the one ``s2v control --out run`` trained, or (without that run) a quick
    one (:data:`QUICK`: fewer clips and epochs, middle frames), trained once and kept in ``runs/course/``.
    Returns ``(encoder, gap vector, where it came from)``."""
    from .course import REPO_ROOT, resolve, runs_dir

    saved = resolve(Path(run) / "audio_encoder.safetensors")
    if saved.exists():
        return *load_control_encoder(saved), f"trained by `s2v control`: {saved.relative_to(REPO_ROOT)}"
    cfg = ControlConfig(**{**QUICK, **(quick or {})})
    kept = runs_dir("course") / f"control-encoder-n{cfg.n_train}-e{cfg.epochs}-{cfg.pairing}-s{cfg.seeds[0]}.safetensors"
    if kept.exists():
        return *load_control_encoder(kept), f"quick encoder trained earlier: {kept.relative_to(REPO_ROOT)}"
    t0 = time.time()
    v, gap = train_control_encoder(cfg)
    save_control_encoder(v.model, gap, kept, {"loss": "infonce_l2", **QUICK, **(quick or {})})
    how = f"quick encoder ({cfg.n_train} clips, {cfg.epochs} epochs) trained now in {time.time() - t0:.0f} s"
    return v.model, gap, how


def measure_all(ctrl: Controller, cfg: ControlConfig, seed: int | None = None) -> dict:
    """The four measurements on held-out sounds (and the mixing reference); returns metrics (keys starting with ``_``
    hold arrays for figures and per-clip values). Each reported seed takes other held-out sounds of the held-out
    world (clips ``(seed - 1) * 1000 ...``)."""
    from .progress import progress

    start = 1000 * ((cfg.seeds[0] if seed is None else seed) - 1)
    n = max(cfg.n_volume, cfg.n_edit, 2 * tw.N_CATEGORIES, 16)
    stems = heldout_stems(n, cfg.heldout_seed, start=start)
    refs = heldout_stems(tw.N_CATEGORIES, cfg.heldout_seed, start=start + n)  # the sounds whose direction edits pictures
    pairs = mixture_pairs(stems, cfg.n_mix, cfg.seed)
    out = {}
    steps = [("volume", lambda: measure_volume(ctrl, stems[: cfg.n_volume], cfg.volume_levels_db, cfg.volume_samples)),
             ("mixing", lambda: measure_mixing(ctrl, stems, pairs, cfg.mix_gains_db)),
             ("mixing_oracle", lambda: measure_mixing_oracle(ctrl, cfg.n_mix, cfg.heldout_seed)),
             ("interpolation", lambda: measure_interpolation(ctrl, stems, cfg.n_interp, cfg.interp_steps,
                                                             cfg.interp_tolerance, cfg.seed)),
             ("editing", lambda: measure_editing(ctrl, stems[: cfg.n_edit], refs, cfg.edit_alpha, cfg.edit_samples))]  # fmt: skip
    for name, fn in progress(steps, desc="controllability"):
        out[name] = fn()
    return out


def run_control(out: str | Path, force: bool = False, config: ControlConfig | None = None) -> dict:
    """``s2v control``: for each seed, train the audio encoder and measure the four edits; write metrics.json (with
    several seeds: means with 95% intervals), the first seed's figures, sounds and encoder."""
    from . import stats
    from .audio import save_wav
    from .config import profile, setup_torch
    from .demo import prepare_out
    from .experiment import TUNING_SEED

    cfg = config or ControlConfig()
    t0 = time.time()
    setup_torch()
    if profile() == "full":
        raise NotImplementedError("`s2v control` measures on the toy world's ground truth; with the full profile use "
                                  "s2v_lib.manipulate's operations on your own sounds (notebook 05)")  # fmt: skip
    if TUNING_SEED in cfg.seeds:
        raise ValueError(f"seed {TUNING_SEED} is the tuning seed (the settings were chosen on it): report other seeds")
    out = prepare_out(out, force)

    def one(seed: int) -> dict:
        s0 = time.time()
        first = seed == cfg.seeds[0]
        v, gap = train_control_encoder(cfg, checkpoint=out / "audio_encoder.ckpt" if first else None, seed=seed)
        t_train = time.time() - s0
        parts = measure_all(Controller.from_config(v.model, cfg, gap), cfg, seed)
        if first:
            save_control_encoder(v.model, gap, out / "audio_encoder.safetensors",
                                 {"loss": "infonce_l2", "pairing": cfg.pairing, "p_mixture": cfg.p_mixture})  # fmt: skip
            write_figures(parts, out)
            for name, part in parts.items():
                for k, wave in enumerate(part.get("_waves", [])[:5]):
                    save_wav(out / "sounds" / f"{name}-{k}.wav", wave / max(1.0, float(np.abs(wave).max())))
        m = public_metrics(parts)
        m["_per_clip"] = {k: v for part in parts.values() for k, v in part.get("_per_clip", {}).items()}
        m.update(seconds_training=t_train, train_val_r_at_1=v.history.val_r_at_1[-1], gap_norm=float(gap.norm()))
        return m

    metrics, runs, excluded = stats.over_seeds(one, cfg.seeds, desc="control seeds")
    metrics.update(frontend_loudness())
    metrics.update({
        "seeds": [s for s in cfg.seeds if s not in excluded], "excluded_seeds": excluded, "tuning_seed": TUNING_SEED,
        "interval": stats.INTERVAL_DEFINITION if len(runs) > 1 else "one seed: no interval",
        "command": f"s2v control --seeds {len(cfg.seeds)}", "seconds": time.time() - t0, "config": asdict(cfg),
    })  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def public_metrics(parts: dict) -> dict:
    """The measurements without their figure arrays (the keys that start with ``_``), flat."""
    return {k: v for part in parts.values() for k, v in part.items() if not k.startswith("_")}


def write_figures(parts: dict, out: Path, rows: int = 4) -> list[Path]:
    """One strip figure per operation (the first ``rows`` examples) and the size-vs-level curve."""
    from . import viz

    paths = []
    if "volume" in parts:
        p = parts["volume"]
        titles = [[f"{s:.1f} px" for s in row] for row in p["_size"][:rows]]
        paths.append(viz.manipulation_strip(p["_images"][:rows], [f"{lv:+.1f} dBFS" for lv in p["_levels"]],
                                            cell_titles=titles, path=out / "volume.png",
                                            title="source louder against the fixed floor -> judged size"))  # fmt: skip
        paths.append(viz.size_vs_level(p["_levels"], p["_size"], out / "volume_size.png"))
    if "mixing" in parts:
        p = parts["mixing"]
        names = [[tw.CATEGORY_NAMES[c] for c in pair] for pair in p["_categories"][:rows]]
        cols = ["first alone", "second alone"] + [f"mix, 2nd {g:+g} dB" for g in p["_gains"]]
        ok = [["both" if b else "" for b in row] for row in p["_both"][:rows]]
        paths.append(viz.manipulation_strip(p["_images"][:rows], cols, [" + ".join(n) for n in names], ok,
                                            path=out / "mixing.png", title="two sounds mixed (both judged?)"))  # fmt: skip
    if "interpolation" in parts:
        p = parts["interpolation"]
        idx = np.concatenate([np.flatnonzero(p["_kinds"] == k)[: rows // 2] for k in np.unique(p["_kinds"])])
        titles = [[f"p={x:.2f}" for x in p["_p"][i]] for i in idx]
        labels = [f"{p['_kinds'][i]} -> {tw.CATEGORY_NAMES[p['_targets'][i]]}" for i in idx]
        paths.append(viz.manipulation_strip(p["_images"][idx], [f"t={w:.1f}" for w in p["_weights"]], labels, titles,
                                            path=out / "interpolation.png",
                                            title="latent interpolation (p = judged probability of the end's category)"))  # fmt: skip
    if "editing" in parts:
        p = parts["editing"]
        images = np.concatenate([p["_frames"][:rows, None], p["_images"][:rows]], 1)
        titles = [[""] + [f"{s:.1f} px" for s in row] for row in p["_size"][:rows]]
        cols = ["picture"] + [f"alpha={a:+g}" for a in p["_alphas"]]
        paths.append(viz.manipulation_strip(images, cols, cell_titles=titles, path=out / "editing.png",
                                            title="image embedding + alpha (embed(loud) - embed(quiet))"))  # fmt: skip
    return paths


def summary(m: dict) -> str:
    from .stats import fmt

    lines = [
        f"volume: source louder against the floor -> bigger object: Spearman {fmt(m['volume_size_spearman'])}; "
        f"whole clip louder (floor included): {fmt(m['volume_size_spearman_whole_clip'])}",
        f"  front end, change of the z-scored spectrogram per dB of whole-clip gain: toy {m['frontend_dz_per_db_toy']:.4f}, "
        f"paper {m['frontend_dz_per_db_paper']:.4f} (raw |STFT|^2 instead of a density: {m['frontend_dz_per_db_raw_power']:.4f})",
        f"mixing: both objects judged in {fmt(m['mix_both_rate'])} of pictures of a two-sound mixture (either sound "
        f"alone: {fmt(m['mix_both_rate_single'])}; pictures drawn from real two-object frames' embeddings: "
        f"{fmt(m['mix_both_rate_oracle'])}; the real frames themselves: {fmt(m['mix_both_rate_real_frames'])})",
        f"  a mixture made in the latent (z_a + z_b - mean): both judged in {fmt(m['mix_both_rate_latent_sum'])}",
        f"interpolation: monotonic paths {fmt(m['interp_monotonic_rate'])}",
        f"editing along a sound direction: size moves the intended way in {fmt(m['edit_direction_rate'])} (chance 0.5)",
        f"seeds {m.get('seeds')} (settings chosen on seed {m.get('tuning_seed')}); wall time {m.get('seconds', 0):.0f} s",
    ]  # fmt: skip
    return "\n".join(lines)
