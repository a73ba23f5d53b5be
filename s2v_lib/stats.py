"""Numbers you can trust: figures over several seeds with 95% intervals, and comparisons that respect them.

One training seed cannot rank two rows that differ by less than its own noise: in the toy world rows move by up to
0.17 in judged accuracy between runs that differ only in torch's thread count. The measuring commands therefore take
``--seeds N`` (each seed is a different toy-world split *and* a different training seed) and report every figure as

    {"mean": m, "ci95": [lo, hi], "per_seed": [v_1, ..., v_N]}

**How the interval is computed.** A *hierarchical percentile bootstrap* (2,000 resamples, fixed generator): each
resample draws N seeds with replacement, then, within each drawn seed, that seed's held-out clips with replacement,
and averages; the interval is the 2.5th to 97.5th percentile of those averages. It therefore contains both the noise
of training (between seeds) and the noise of the finite test set (between clips). Figures that are not an average
over clips (a Frechet distance, a rank correlation, wall time) are resampled over seeds only. With one seed the
interval is over clips only and says nothing about training noise; with three it is approximate (a bootstrap of
three values is narrower than the truth), so read small gaps with care.

**Comparisons.** :func:`compare` says "A beats B" only when the two intervals do not overlap, and otherwise "not
distinguishable at N seeds": the rule the README and notebooks follow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 12345
INTERVAL_DEFINITION = ("95% interval: hierarchical percentile bootstrap, 2,000 resamples of the seeds and, within each, "
                       "of its held-out clips (figures that are not means over clips: of the seeds only)")


def is_interval(x) -> bool:
    return isinstance(x, dict) and "mean" in x and "ci95" in x


def interval(per_seed: Sequence[float], per_clip: Sequence[np.ndarray] | None = None,
             n_boot: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED) -> dict:  # fmt: skip
    """``{"mean", "ci95", "per_seed"}`` of a figure measured once per seed.

    ``per_seed``: the figure of each seed. ``per_clip`` (optional): for a figure that is a mean over held-out clips,
    each seed's per-clip values (their mean is that seed's figure); with it the bootstrap also resamples clips.
    Seeds whose figure is NaN are left out (and the count of those kept is ``n_seeds``)."""
    values = np.asarray(per_seed, dtype=np.float64)
    keep = np.isfinite(values)
    out = {"mean": float("nan"), "ci95": [float("nan"), float("nan")], "per_seed": [float(v) for v in values]}
    if not keep.any():
        return out
    clips = None
    if per_clip is not None:  # per-clip values that are NaN (e.g. an attribute where nothing was found) are left out
        clips = [np.asarray(c, dtype=np.float64) for c in per_clip]
        clips = [c[np.isfinite(c)] for c in clips]
        keep &= np.array([len(c) > 0 for c in clips])
        clips = [c for c, k in zip(clips, keep) if k]
        if not keep.any():
            return out
    values = values[keep]
    rng = np.random.default_rng(seed)
    n = len(values)
    seeds = rng.integers(0, n, size=(n_boot, n))
    if clips is not None:
        # means of a within-seed resample of clips, for every (resample, seed) draw
        boot_seed = np.empty((n_boot, n))
        for s in range(n):
            c = clips[s]
            rows = seeds == s
            draws = int(rows.sum())
            if draws:
                boot_seed[rows] = c[rng.integers(0, len(c), size=(draws, len(c)))].mean(1)
        boot = boot_seed.mean(1)
        mean = float(np.mean([c.mean() for c in clips]))
    else:
        boot = values[seeds].mean(1)
        mean = float(values.mean())
    lo, hi = np.percentile(boot, [2.5, 97.5])
    out.update(mean=mean, ci95=[float(lo), float(hi)], n_seeds=int(n))
    return out


def mean_of(x) -> float:
    """The mean of an interval dict, or the number itself."""
    return float(x["mean"]) if is_interval(x) else float(x)


def bounds(x) -> tuple[float, float]:
    """(lo, hi) of an interval dict; a plain number is its own (degenerate) interval."""
    if is_interval(x):
        lo, hi = x["ci95"]
        return float(lo), float(hi)
    return float(x), float(x)


def half_width(x) -> float:
    lo, hi = bounds(x)
    return (hi - lo) / 2


def compare(a, b, higher_is_better: bool = True, names: tuple[str, str] = ("A", "B")) -> str:
    """"A beats B" only when the intervals do not overlap; else "not distinguishable at N seeds"."""
    (alo, ahi), (blo, bhi) = bounds(a), bounds(b)
    n = a.get("n_seeds", len(a.get("per_seed", [1]))) if is_interval(a) else 1
    if any(math.isnan(v) for v in (alo, ahi, blo, bhi)):
        return f"{names[0]} vs {names[1]}: not measured"
    a_better = alo > bhi if higher_is_better else ahi < blo
    b_better = blo > ahi if higher_is_better else bhi < alo
    if a_better:
        return f"{names[0]} beats {names[1]}"
    if b_better:
        return f"{names[1]} beats {names[0]}"
    return f"{names[0]} and {names[1]} are not distinguishable at {n} seed{'s' if n != 1 else ''}"


def beats(a, b, higher_is_better: bool = True) -> bool:
    """True when a's interval lies entirely on the better side of b's."""
    (alo, ahi), (blo, bhi) = bounds(a), bounds(b)
    return alo > bhi if higher_is_better else ahi < blo


def fmt(x, digits: int = 3) -> str:
    """``0.879 ± 0.021`` for an interval (mean ± half-width), the plain number otherwise; ``-`` for missing."""
    if x is None:
        return "-"
    m = mean_of(x)
    if math.isnan(m):
        return "-"
    d = digits if abs(m) < 10 else 1
    if is_interval(x) and not math.isnan(half_width(x)):
        return f"{m:.{d}f} ± {half_width(x):.{d}f}"
    return f"{m:.{d}f}"


def public(m):
    """A metrics dict without its private parts (keys starting with ``_``, e.g. ``_per_clip``), recursively."""
    if isinstance(m, dict):
        return {k: public(v) for k, v in m.items() if not str(k).startswith("_")}
    return m


def combine_seeds(runs: list[dict]) -> dict:
    """Merge the metrics dicts of several seeds (same keys) into one: every number becomes an :func:`interval`;
    nested dicts are merged key by key; other values (strings, lists, booleans) are kept from the first seed.
    A run's ``_per_clip`` dict (same key -> that seed's per-clip values) makes the interval resample clips too."""
    first = runs[0]
    out = {}
    for key, value in first.items():
        if str(key).startswith("_"):
            continue
        vals = [r.get(key) for r in runs]
        if isinstance(value, bool) or value is None:
            out[key] = value
        elif isinstance(value, (int, float)):
            nums = [float(v) if isinstance(v, (int, float)) and v is not None else float("nan") for v in vals]
            clips = [r.get("_per_clip", {}).get(key) for r in runs]
            out[key] = interval(nums, clips if all(c is not None for c in clips) else None)
        elif isinstance(value, dict):
            out[key] = combine_seeds([v if isinstance(v, dict) else {} for v in vals])
        else:
            out[key] = value
    return out


class Diverged(RuntimeError):
    """A training run whose loss became NaN or infinite: its seed is excluded from the figures, and counted."""


def over_seeds(run_one, seeds: Sequence[int], desc: str = "seeds") -> tuple[dict, list[dict], dict[int, str]]:
    """Run ``run_one(seed) -> metrics`` for each seed and merge the results (:func:`combine_seeds`; one seed: its
    metrics as they are). A seed that raises :class:`Diverged` is left out and reported, never averaged in.
    Returns (merged metrics, the per-seed metrics, {excluded seed: why})."""
    from .progress import progress

    runs, excluded = [], {}
    for seed in progress(list(seeds), desc=desc, unit="seed"):
        try:
            runs.append(run_one(seed))
        except Diverged as err:
            excluded[int(seed)] = str(err)
    if not runs:
        raise Diverged(f"training diverged for every seed ({excluded})")
    merged = combine_seeds(runs) if len(runs) > 1 else public(runs[0])
    return merged, runs, excluded
