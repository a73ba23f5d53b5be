"""Which part loses an object's size (and shade) on the way from a frame to a generated picture?

    python scripts/attribute_limits.py      # prints size and shade errors at each stage, beside a constant guess

The ablation's true-frame row (the generator fed the true frame's image embedding) reads sizes no better than a
constant guess. Three stages could be at fault; each is measured on held-out toy clips against their ground truth:

1. the judge: its size / shade reading of the *real* frames;
2. the frozen image encoder: a ridge regression from the frame's image embedding to the true size / shade (fitted on
   training clips, scored on held-out ones): how much of the attribute the embedding keeps;
3. the frozen generator: the judge's reading of the pictures drawn from the true frames' embeddings.

All errors are taken where the judge finds the sound's category (as ``s2v ablate`` does), next to the constant
guess (the training clips' median). Seeds: the held-out clips of reported seed 1's split; nothing is tuned here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from s2v_lib.ablation import constant_guess  # noqa: E402
from s2v_lib.config import setup_torch  # noqa: E402
from s2v_lib.data import build_toy_dataset, take_frames, truth_frame  # noqa: E402
from s2v_lib.metrics import attribute_scores  # noqa: E402
from s2v_lib.registry import load_generator, load_image_encoder, load_judge  # noqa: E402
from s2v_lib.toyworld import loudness_to_size, pitch_to_shade  # noqa: E402


def ridge(x_train, y_train, x_test, lam: float = 1e-2) -> np.ndarray:
    xt = np.c_[x_train, np.ones(len(x_train))]
    w = np.linalg.solve(xt.T @ xt + lam * np.eye(xt.shape[1]), xt.T @ y_train)
    return np.c_[x_test, np.ones(len(x_test))] @ w


def main() -> None:
    setup_torch()
    train, test = build_toy_dataset(4400, seed=1).split(240)
    judge, encoder = load_judge(), load_image_encoder("toy")
    guess = constant_guess(train)
    truth = {"size": loudness_to_size(test.loudness_db), "shade": pitch_to_shade(test.pitch)}
    frames_test = take_frames(test, truth_frame(test))
    frames_train = take_frames(train, truth_frame(train))
    emb_train, emb_test = encoder.encode(frames_train).numpy(), encoder.encode(frames_test).numpy()
    out = {}
    real = attribute_scores(judge, frames_test[:, None], test.label, truth["size"], truth["shade"], guess)
    pictures = load_generator("toy-diffusion").generate(torch.as_tensor(emb_test), n=2, seed=1, steps=10)
    drawn = attribute_scores(judge, pictures, test.label, truth["size"], truth["shade"], guess)
    for name in ("size", "shade"):
        y_train = (loudness_to_size(train.loudness_db) if name == "size" else pitch_to_shade(train.pitch))
        probe = ridge(emb_train, y_train, emb_test)
        out[name] = {
            "constant_guess_error": float(np.abs(guess[name] - truth[name]).mean()),
            "judge_on_real_frames_error": real[f"{name}_mae"],
            "image_embedding_linear_probe_error": float(np.abs(probe - truth[name]).mean()),
            "generator_true_frame_pictures_error": drawn[f"{name}_mae"],
            "generator_true_frame_pictures_spearman": drawn[f"{name}_spearman"],
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
