"""Self-checks for the course's exercises: is my answer right?

Every exercise that has one right answer comes with a ``check_...`` function here. It prints one line, *Correct* or
*Not yet*, with a hint that points at the likely mistake, and never the solution itself. An answer of the wrong type
or shape gets a message saying what is expected (and which cell makes it), not a stack trace::

    from s2v_lib import selfcheck
    selfcheck.check_infonce_l2(my_infonce_l2)      # notebook 03
    selfcheck.check_ddim_sampler(my_pictures, embeds, generator, seed=0)   # notebook 04

Each check also returns a :class:`Verdict` (true when the answer is right) for tests and scripts; in a notebook it
shows nothing beyond the printed line.

| notebook | exercise | check |
|---|---|---|
| 03 | the distance matrix D | :func:`check_distance_matrix` |
| 03 | InfoNCE-L2 from its formula | :func:`check_infonce_l2` |
| 03 | middle-frame training pairs | :func:`check_middle_anchors` |
| 03, 04 | accuracy per category | :func:`check_per_category` |
| 04 | the classifier-free guidance formula | :func:`check_guidance` |
| 04 | the DDIM sampler written out | :func:`check_ddim_sampler` |
| 07 | time frames of the paper's spectrogram | :func:`check_paper_frames` |
| 07 | disk space of a feature cache | :func:`check_cache_bytes` |
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

TOLERANCE = 1e-4  # relative, for answers computed in float32


class Verdict:
    """The outcome of a check: ``bool(verdict)`` is whether the answer is right; ``verdict.message`` what was said."""

    def __init__(self, ok: bool, message: str):
        self.ok, self.message = bool(ok), message

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"Verdict(ok={self.ok}, message={self.message!r})"

    def _ipython_display_(self) -> None:  # the line was printed already: show nothing more in a notebook
        pass


class _Wrong(Exception):
    """An answer that cannot be checked as given (wrong type or shape): the message says what is expected."""


def _say(ok: bool, message: str) -> Verdict:
    line = ("Correct: " if ok else "Not yet: ") + message
    print(line)
    return Verdict(ok, line)


def _checked(func):
    """Turn a wrong type or shape, or an error raised by the student's own function, into a message."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except _Wrong as err:
            return _say(False, str(err))

    return wrapper


def _tensor(x, what: str, shape_hint: str) -> torch.Tensor:
    """``x`` as a float64 tensor, or :class:`_Wrong` saying what was expected."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64).cpu()
    if isinstance(x, np.ndarray | list | tuple | float | int) and not isinstance(x, bool):
        try:
            return torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError):
            pass
    raise _Wrong(f"{what} should be a tensor (or numpy array) of shape {shape_hint}; got {type(x).__name__}.")


def _shape(x: torch.Tensor, expected: tuple, what: str, hint: str = "") -> None:
    if tuple(x.shape) != tuple(expected):
        raise _Wrong(f"{what} should have shape {tuple(expected)}{hint}; got {tuple(x.shape)}.")


def _call(fn, name: str, signature: str, *args):
    """Call the student's function; its errors become a message naming the call."""
    if not callable(fn):
        raise _Wrong(f"pass your function itself, `{signature}` (without calling it); got {type(fn).__name__}.")
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 - any error of the student's code is reported, not raised
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise _Wrong(f"calling {name} raised {type(err).__name__}: {first}. It is called as `{signature}`; "
                     "try it on small tensors in a cell of its own first.") from None  # fmt: skip


def _close(x: torch.Tensor, y: torch.Tensor, tol: float = TOLERANCE) -> bool:
    return x.shape == y.shape and bool(
        torch.allclose(x, y, rtol=tol, atol=tol * (1 + float(y.abs().max()) if y.numel() else 1))
    )


def _scalar(value, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise _Wrong(f"{name} should return a torch tensor (a scalar: the loss of the batch); got {type(value).__name__}. "
                     "Use torch operations throughout, so that the loss can be differentiated.")  # fmt: skip
    if value.numel() != 1:
        raise _Wrong(f"{name} should return one number (a 0-d tensor: the loss averaged over the batch); got a tensor "
                     f"of shape {tuple(value.shape)}.")  # fmt: skip
    return value.reshape(())


# ----------------------------------------------------------------------------------------------------------------
# notebook 03: the loss


def _example_batch(b: int = 6, d: int = 5, scale: float = 3.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(b, d, generator=g) * scale
    a = v + torch.randn(b, d, generator=g) * scale * 0.7
    return a.double(), v.double()


@_checked
def check_distance_matrix(D, a, v) -> Verdict:
    """Exercise (03): ``D[i, j] = ||a_i - v_j||_2`` for audio embeddings ``a`` [B, d] and anchors ``v`` [B, d]."""
    a, v = _tensor(a, "a", "[B, d]"), _tensor(v, "v", "[B, d]")
    D = _tensor(D, "D", f"[{len(a)}, {len(v)}]")
    _shape(D, (len(a), len(v)), "D", " (one row per sound a_i, one column per frame v_j)")
    right = torch.cdist(a, v)
    if _close(D, right):
        return _say(True, "D[i, j] is the Euclidean distance from sound i to frame j.")
    if _close(D, right.square()):
        return _say(False, "these look like squared distances; D is the distance itself (take the square root).")
    if _close(D, right.T):
        return _say(False, "D is transposed: row i should be sound a_i, column j frame v_j.")
    if _close(D, -right):
        return _say(False, "D holds distances (positive numbers); the minus sign belongs to the logits, -D.")
    return _say(False, "some entries differ from ||a_i - v_j||_2. Check D[0, 1] by hand: (a[0] - v[1]).norm().")


def _infonce_variants(a: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
    """The right loss and the usual slips, each with the hint it deserves."""
    d = torch.cdist(a, v)
    t = torch.arange(len(a))
    ce = lambda logits: F.cross_entropy(logits, t)  # noqa: E731
    an, vn = F.normalize(a, dim=1), F.normalize(v, dim=1)
    return {
        "right": 0.5 * (ce(-d) + ce(-d.T)),
        "the logits are -D, not D: a nearer frame must get a larger logit.": 0.5 * (ce(d) + ce(d.T)),
        "D is the distance itself, not its square.": 0.5 * (ce(-d.square()) + ce(-d.square().T)),
        "only one direction: average the sound->frame loss CE(-D, I) and the frame->sound loss CE(-D^T, I).": ce(-d),
        "only the frame->sound direction: average it with the sound->frame loss CE(-D, I).": ce(-d.T),
        "the two directions are added; the loss is their mean (the factor 1/2).": ce(-d) + ce(-d.T),
        "the cross-entropy is summed over the batch; it should be averaged (divide by B).":
            0.5 * (F.cross_entropy(-d, t, reduction="sum") + F.cross_entropy(-d.T, t, reduction="sum")),
        "your embeddings are normalised: Sound2Vision compares the raw embeddings (that was Sound2Scene).":
            0.5 * (ce(-torch.cdist(an, vn)) + ce(-torch.cdist(an, vn).T)),
    }  # fmt: skip


@_checked
def check_infonce_l2(fn) -> Verdict:
    """Exercise (03): ``fn(a, v)`` returns InfoNCE-L2, ``1/2 [CE(-D, I) + CE(-D^T, I)]`` with ``D_ij = ||a_i - v_j||``.

    Tried on a few random batches (sizes and scales differ) against the formula and against
    :func:`s2v_lib.losses.infonce_l2`; a wrong answer is matched against the usual slips for the hint."""
    from .losses import infonce_l2

    for b, d, scale, seed in ((6, 5, 3.0, 0), (16, 128, 10.0, 1), (3, 2, 0.5, 2)):
        a, v = _example_batch(b, d, scale, seed)
        a32 = a.float().requires_grad_(True)
        got = _scalar(_call(fn, "your function", "fn(a, v)", a32, v.float()), "your function")
        if not got.requires_grad:
            raise _Wrong("your loss carries no gradient back to a: use torch operations only (no .item(), numpy "
                         "or .detach() inside), so that the optimiser can train the encoder with it.")  # fmt: skip
        got = got.detach().double()
        variants = _infonce_variants(a, v)
        right = variants.pop("right")
        if not torch.isclose(right, infonce_l2(a, v), rtol=1e-6):  # the library and the formula agree
            raise AssertionError("s2v_lib.losses.infonce_l2 disagrees with its formula")
        if not torch.isclose(got, right, rtol=TOLERANCE):
            for hint, value in variants.items():
                if torch.isclose(got, value, rtol=TOLERANCE):
                    return _say(False, hint)
            return _say(False, f"on a batch of {b} pairs of {d}-d embeddings your loss differs from "
                               "1/2 [CE(-D, I) + CE(-D^T, I)]. Build D first (check it with check_distance_matrix), "
                               "then F.cross_entropy(logits, targets) with targets = torch.arange(B).")  # fmt: skip
    return _say(True, "your function computes InfoNCE-L2 and agrees with s2v_lib.losses.infonce_l2 on three batches.")


@_checked
def check_middle_anchors(anchors, exp) -> Verdict:
    """Exercise (03): the anchors of the middle-frame pairs, one per training clip of ``exp`` (prepare_experiment)."""
    if exp is None or not hasattr(exp, "training_pairs"):
        raise _Wrong("pass the notebook's experiment as the second argument (`exp`, made by prepare_experiment in "
                     "section 1 of notebook 03: run that cell first).")  # fmt: skip
    n = len(exp.train)
    got = _tensor(anchors, "anchors", f"[{n}, D]")
    right = exp.training_pairs("middle")[1].double()
    _shape(got, tuple(right.shape), "anchors", " (one image embedding per training clip)")
    if _close(got, right):
        return _say(True, "these are the image embeddings of each training clip's middle frame.")
    for other in ("top1", "random", "truth"):
        try:
            if _close(got, exp.training_pairs(other)[1].double()):
                return _say(False, f"these are the anchors of the '{other}' pairing; the exercise asks for the middle "
                                   "frame of each clip.")  # fmt: skip
        except ValueError:
            continue
    return _say(False, "these are not the middle frames' embeddings. The frame index is T // 2 for every clip "
                       "(T frames per clip); exp.training_pairs(...) returns (frame index, anchors).")  # fmt: skip


@_checked
def check_per_category(values, predicted, labels, n_categories: int | None = None) -> Verdict:
    """Exercises (03, 04): ``values[c]`` = share of the items of true category c whose ``predicted`` category is c."""
    pred = np.asarray(predicted).reshape(-1)
    lab = np.asarray(labels).reshape(-1)
    if pred.shape != lab.shape:
        raise _Wrong(f"predicted and labels should be two arrays of the same length; got {pred.shape} and {lab.shape}.")
    k = n_categories or int(max(lab.max(initial=0), pred.max(initial=0)) + 1)
    got = _tensor(values, "your per-category accuracies", f"[{k}]").reshape(-1)
    _shape(got, (k,), "your per-category accuracies", " (one number per category, in category order)")
    right = torch.tensor([np.mean(pred[lab == c] == c) if np.any(lab == c) else float("nan") for c in range(k)],
                         dtype=torch.float64)  # fmt: skip
    seen = ~torch.isnan(right)
    if _close(got[seen], right[seen], 1e-3):
        return _say(True, "one accuracy per category, each over that category's own items.")
    if _close(got[seen] / 100, right[seen], 1e-3):
        return _say(False, "these look like percentages; give shares between 0 and 1.")
    overall = float(np.mean(pred == lab))
    if _close(got[seen], torch.full_like(right[seen], overall), 1e-3):
        return _say(False, "every entry is the overall accuracy; select each category's own items (labels == c).")
    return _say(False, "some categories differ. For category c keep only the items whose true label is c, then count "
                       "how often the predicted category is c too.")  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# notebook 04: guidance and the DDIM sampler


@_checked
def check_guidance(fn) -> Verdict:
    """Exercise (04): ``fn(x0_cond, x0_uncond, w)`` returns the guided prediction ``x0_u + w (x0_c - x0_u)``."""
    g = torch.Generator().manual_seed(0)
    c, u = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    for w in (0.0, 1.0, 2.0, 7.5):
        got = _call(fn, "your function", "fn(x0_cond, x0_uncond, w)", c, u, w)
        got = _tensor(got, "your guided prediction", str(tuple(c.shape)))
        _shape(got, tuple(c.shape), "your guided prediction", " (the same shape as the two predictions)")
        if not _close(got, (u + w * (c - u)).double()):
            if _close(got, (c + w * (u - c)).double()):
                return _say(False, "the roles are swapped: start from the unconditional prediction and move towards "
                                   "the conditional one.")  # fmt: skip
            if _close(got, (w * c).double()):
                return _say(False, "the unconditional prediction is missing: guidance extrapolates along the "
                                   "difference between the two predictions.")  # fmt: skip
            return _say(False, f"with w = {w} your result differs. With w = 1 guidance must give the conditional "
                               "prediction unchanged, with w = 0 the unconditional one.")  # fmt: skip
    return _say(True, "w = 0 gives the unconditional prediction, w = 1 the conditional one, larger w goes beyond it.")


@_checked
def check_ddim_sampler(pictures, embeds, generator, seed: int = 0, steps: int = 10, guidance: float = 2.0) -> Verdict:
    """Exercise (04): pictures drawn by your own DDIM loop equal ``generator.generate(embeds, n=1, seed, steps,
    guidance)[:, 0]`` (uint8 [B, H, W, 3], or float [B, 3, H, W] in [-1, 1] before conversion)."""
    e = _tensor(embeds, "embeds", "[B, D]").float()
    if e.ndim != 2:
        raise _Wrong(f"embeds should be [B, D] (one embedding per row); got shape {tuple(e.shape)}.")
    if not hasattr(generator, "generate") or not hasattr(generator, "denoise"):
        raise _Wrong("pass the toy diffusion generator (registry.load_generator('toy-diffusion')) as `generator`.")
    right = generator.generate(e, n=1, seed=seed, steps=steps, guidance=guidance)[:, 0]
    size = generator.image_size
    got = pictures.detach().cpu() if isinstance(pictures, torch.Tensor) else pictures
    got = np.asarray(got)
    if got.ndim == 5 and got.shape[1] == 1:
        got = got[:, 0]
    if got.shape == (len(e), 3, size, size):  # float pictures in [-1, 1]: convert as the library does
        from .generators import to_uint8

        got = to_uint8(torch.as_tensor(got, dtype=torch.float32))
    if got.shape != right.shape:
        raise _Wrong(f"expected your pictures as uint8 [{len(e)}, {size}, {size}, 3] (or the sampler's output "
                     f"x as float [{len(e)}, 3, {size}, {size}]); got shape {got.shape}.")  # fmt: skip
    diff = np.abs(got.astype(np.int16) - right.astype(np.int16))
    if diff.max() <= 2:  # float rounding across the batch may flip a pixel by one level
        return _say(True, f"your sampler draws the library's pictures ({steps} DDIM steps, guidance {guidance}).")
    if diff.mean() < 20:
        return _say(False, f"close, but not the same pictures (mean difference {diff.mean():.1f} levels of 255). Did "
                           "you clamp x0 to [-1, 1] before each step, and use every one of sched.timesteps?")  # fmt: skip
    return _say(False, "different pictures. Start from the same noise (torch.randn(B, 3, H, W, generator="
                       "torch.Generator().manual_seed(seed))), set sched.set_timesteps(steps), and at each t combine "
                       "the two predictions with the guidance formula before the DDIM step.")  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# notebook 07: planning a real run


def _paper_frames() -> tuple[int, int]:
    """(frequency bins, time frames) of the paper's front end for a 10-s clip, computed by the front end itself."""
    from .audio import FrontEnd

    fe = FrontEnd.preset("paper")
    spec = fe(np.zeros(fe.n_samples, np.float32))
    return int(spec.shape[-2]), int(spec.shape[-1])


@_checked
def check_paper_frames(n_frames) -> Verdict:
    """Exercise (07): the number of time frames T of the paper's spectrogram of a 10-s, 16 kHz clip."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer | float):
        raise _Wrong(f"give T as a number (an int); got {type(n_frames).__name__}.")
    if float(n_frames) != int(n_frames):
        raise _Wrong(f"T counts frames, a whole number; got {n_frames}.")
    t = _paper_frames()[1]
    n = int(n_frames)
    if n == t:
        return _say(True, "T is the number of whole windows of 512 samples that fit, one every 512 - 353 samples.")
    if abs(n - t) == 1:
        return _say(False, "off by one: the first window starts at sample 0, so count it too (the + 1 in the formula).")
    if n == 16000 * 10 // 512 or n == 16000 * 10 // 353:
        return _say(False, "windows overlap: a new one starts every nperseg - noverlap samples (the hop).")
    return _say(False, "T = 1 + floor((N - nperseg) / (nperseg - noverlap)), with N the number of samples in 10 s.")


@_checked
def check_cache_bytes(n_bytes, n_clips: int, dim: int = 1024) -> Verdict:
    """Exercise (07): disk space of a feature cache of ``n_clips`` clips (within 2 %): 10 s of 16 kHz audio stored as
    float16, one ``dim``-d float32 image embedding and one int16 frame number per clip (``s2v_lib.video``)."""
    if isinstance(n_bytes, bool) or not isinstance(n_bytes, int | float | np.integer | np.floating):
        raise _Wrong(f"give the size in bytes as a number; got {type(n_bytes).__name__}.")
    if not isinstance(n_clips, int | np.integer) or n_clips < 1:
        raise _Wrong(f"n_clips should be a positive whole number of clips; got {n_clips!r}.")
    audio, embed, frame = 160_000 * 2, dim * 4, 2
    right = n_clips * (audio + embed + frame)
    got = float(n_bytes)
    if math.isclose(got, right, rel_tol=0.02):
        return _say(True, f"{got / 1e9:.2f} GB for {n_clips} clips; the audio is almost all of it.")
    if math.isclose(got, right * 8, rel_tol=0.02) or math.isclose(got, right / 8, rel_tol=0.02):
        return _say(False, "off by a factor of 8: bytes, not bits.")
    if math.isclose(got, n_clips * (160_000 * 4 + embed + frame), rel_tol=0.02):
        return _say(False, "the audio is stored as float16 (2 bytes a sample), not float32.")
    if math.isclose(got, n_clips * (audio + frame), rel_tol=0.02) or math.isclose(got, n_clips * audio, rel_tol=0.02):
        return _say(False, "almost: add the image embedding (float32, 4 bytes a number).")
    if got < right / 50:
        return _say(False, "far too small: did you forget the audio (16,000 samples a second for 10 s, per clip)?")
    return _say(False, "per clip: samples x 2 bytes (float16 audio) + dim x 4 bytes (float32 embedding) + 2 bytes "
                       "(the frame number); times the number of clips.")  # fmt: skip
