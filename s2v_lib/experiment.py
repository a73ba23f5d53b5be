"""One experiment on the toy world = the paper's pipeline with one choice of loss, frame pairing and generator.

``s2v demo`` runs one; the ablation and geometry commands run several on the *same* data and anchors, so their rows
differ only in the choice under study:

    exp = prepare_experiment(n_train=4000)             # clips, spectrograms, frozen anchors of held-out frames
    v = train_variant(exp, loss="infonce_l2", pairing="middle")
    m, pictures = evaluate_variant(exp, v, generator="toy-diffusion")
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .audio import FrontEnd
from .audio_encoder import AudioEncoder, embed_spectrograms
from .data import ToyDataset, build_toy_dataset, pair_frames, take_frames, truth_frame
from .losses import DIRECTION_ONLY
from .metrics import judged_scores, retrieval_recall, same_category_at_1
from .registry import load_generator, load_image_encoder, load_judge
from .toyworld import WorldConfig
from .train import History, TrainConfig, train_audio_encoder


def spectrograms(ds: ToyDataset, front_end: FrontEnd | None = None, batch: int = 512) -> torch.Tensor:
    """Front end over a data set's audio, stored as float16 (10k clips of raw float32 audio would not fit a laptop)."""
    fe = front_end or FrontEnd.preset("toy")
    return torch.cat([fe(ds.audio[i : i + batch].astype(np.float32)).half() for i in range(0, len(ds), batch)])


def match_anchor_norm(emb: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """For direction-only losses: put audio embeddings on the anchors' mean norm before generating."""
    return torch.nn.functional.normalize(emb, dim=1) * anchors.norm(dim=1).mean()


@dataclass
class Experiment:
    """Train / validation / test clips, their spectrograms, and the frozen anchors of the held-out clips
    (anchored on their ground-truth best frame: evaluation only)."""

    train: ToyDataset
    val: ToyDataset
    test: ToyDataset
    specs: dict[str, torch.Tensor]
    anchors_val: torch.Tensor
    anchors_test: torch.Tensor
    seed: int = 0
    ssl_scores: np.ndarray | None = None  # per-frame SSL scores of the training clips (when SSL selection ran)
    ssl_counts: dict | None = None  # how many training clips SSL paired / skipped, and why
    _pairings: dict = field(default_factory=dict)

    @property
    def test_frames(self) -> np.ndarray:
        return take_frames(self.test, truth_frame(self.test))

    def training_pairs(self, pairing: str) -> tuple[np.ndarray, torch.Tensor]:
        """(frame index per training clip, its frozen image embedding) for a pairing; cached per pairing."""
        if pairing not in self._pairings:
            if pairing == "top1" and self.ssl_scores is None:
                raise ValueError("pairing 'top1' needs SSL frame scores: prepare_experiment(..., ssl_select=True)")
            idx = pair_frames(self.train, pairing, seed=self.seed, scores=self.ssl_scores)
            self._pairings[pairing] = (idx, load_image_encoder("toy").encode(take_frames(self.train, idx)))
        return self._pairings[pairing]


def prepare_experiment(n_train: int = 4000, n_val: int = 160, n_test: int = 240, seed: int = 0,
                       ssl_select: bool = False, world: WorldConfig | None = None) -> Experiment:  # fmt: skip
    """Clips, spectrograms and held-out anchors. ``ssl_select``: run sound-source localisation over the training
    clips (paper guide step 2); clips it flags (silent, no source in view) are dropped, the others' frame scores kept
    for ``pairing="top1"``, so every variant of the experiment trains on the same clips. ``world``: the toy world's
    settings (default ``WorldConfig()``, e.g. ``WorldConfig(p_mixture=0.3)`` for two-source clips)."""
    ds = build_toy_dataset(n_train + n_val + n_test, seed=seed, config=world, workers=2)
    train, rest = ds.split(n_val + n_test)
    val, test = rest.split(n_test)
    encoder = load_image_encoder("toy")
    specs = {"train": spectrograms(train), "val": spectrograms(val), "test": spectrograms(test)}
    scores = counts = None
    if ssl_select:
        from .ssl import frame_scores, load_ssl_model, reference_best_scores, select_top1_frame

        model, data = load_ssl_model(), (specs["train"], train.frames)
        scores = frame_scores(model, data)
        sel = select_top1_frame(scores, train.audio, float(model.absent_threshold), reference_best_scores(model, data))
        keep = np.flatnonzero(sel.keep)
        train, specs["train"], scores, counts = train.subset(keep), specs["train"][keep], scores[keep], sel.counts()
    return Experiment(
        train, val, test, specs,
        anchors_val=encoder.encode(take_frames(val, truth_frame(val))),
        anchors_test=encoder.encode(take_frames(test, truth_frame(test))),
        seed=seed, ssl_scores=scores, ssl_counts=counts,
    )  # fmt: skip


@dataclass
class Variant:
    loss: str
    pairing: str
    model: AudioEncoder
    history: History
    train_idx: np.ndarray
    test_embeddings: torch.Tensor  # held-out audio embeddings, as the encoder outputs them


def train_variant(exp: Experiment, loss: str = "infonce_l2", pairing: str = "middle", epochs: int = 3,
                  checkpoint=None, desc: str | None = None) -> Variant:  # fmt: skip
    idx, anchors = exp.training_pairs(pairing)
    cfg = TrainConfig(loss=loss, epochs=epochs)
    model, hist = train_audio_encoder(exp.specs["train"], anchors, exp.specs["val"], exp.anchors_val, cfg,
                                      checkpoint=checkpoint, desc=desc or f"audio encoder ({loss}, {pairing})")  # fmt: skip
    return Variant(loss, pairing, model, hist, idx, embed_spectrograms(model, exp.specs["test"]))


def generator_input(exp: Experiment, v: Variant) -> torch.Tensor:
    """What the generator is fed: the audio embedding itself (rescaled to the anchors' norm for direction-only
    losses, whose outputs have no meaningful length)."""
    anchors = exp.training_pairs(v.pairing)[1]
    return match_anchor_norm(v.test_embeddings, anchors) if v.loss in DIRECTION_ONLY else v.test_embeddings


def evaluate_variant(exp: Experiment, v: Variant, generator: str = "toy-diffusion", steps: int = 10,
                     with_oracle: bool = True) -> tuple[dict, dict]:  # fmt: skip
    """Retrieval and judged generation metrics on the held-out clips; returns (metrics, {"gen", "oracle"} pictures)."""
    gen, judge = load_generator(generator), load_judge()
    kw = {"steps": steps} if generator.endswith("diffusion") else {}
    pictures = {"gen": gen.generate(generator_input(exp, v), n=1, seed=exp.seed, **kw)}
    if with_oracle:
        pictures["oracle"] = gen.generate(exp.anchors_test, n=1, seed=exp.seed, **kw)
    scored = {k: judged_scores(judge, p, exp.test.label) for k, p in pictures.items()}
    scored["real"] = judged_scores(judge, exp.test_frames[:, None], exp.test.label)
    train = exp.train
    m = {
        **retrieval_recall(v.test_embeddings, exp.anchors_test, ks=(1, 5, 10)),
        "same_category_at_1": same_category_at_1(v.test_embeddings, exp.anchors_test, exp.test.label),
        "gen_accuracy": scored["gen"]["accuracy"],
        **({"oracle_accuracy": scored["oracle"]["accuracy"]} if with_oracle else {}),
        "judge_accuracy_real": scored["real"]["accuracy"],
        **{f"{k}_{name}": s[name] for k, s in scored.items() for name in ("top1_accuracy", "extra")},
        "middle_frame_shows_source": float(train.visible[:, train.visible.shape[1] // 2].mean()),
        "paired_frame_shows_source": float(train.visible[np.arange(len(train)), v.train_idx].mean()),
        "final_val_loss": v.history.val_loss[-1],
        "train_seconds": v.history.seconds,
    }
    return m, pictures
