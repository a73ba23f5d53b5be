"""Quick quality check of freshly pre-trained toy models (run at the end of scripts/pretrain_gpu.sh).

Prints the judge's accuracy on real held-out frames and each generator's oracle accuracy (generator fed the true
frame's embedding), and writes a sample grid: real frame | diffusion x3 | GAN x3 for a few held-out clips.
Usage: python scripts/check_pretrained.py MODELS_DIR OUT_PNG [N_CLIPS]
"""

import sys
from pathlib import Path

import numpy as np

from s2v_lib.config import default_device, setup_torch
from s2v_lib.data import build_toy_dataset, take_frames, truth_frame
from s2v_lib.metrics import gen_accuracy
from s2v_lib.registry import load_toy_model

setup_torch()
folder, out_png = Path(sys.argv[1]), Path(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 400
dev = default_device()
ds = build_toy_dataset(n, seed=7, cache=False)
frames = take_frames(ds, truth_frame(ds))
judge = load_toy_model("toy-judge", folder, dev)
enc = load_toy_model("toy-image-encoder", folder, dev)
real_acc = gen_accuracy(judge, frames[:, None], ds.label)  # the same 'recognised' score as the generators
emb = enc.encode(frames)
rows = [frames[:8, None]]
print(f"judge accuracy on real held-out frames: {real_acc:.3f}")
for name in ("toy-diffusion", "toy-gan"):
    try:
        gen = load_toy_model(name, folder, dev)
    except Exception as err:  # a stage may have failed; report the others
        print(f"{name}: {err}")
        continue
    imgs = gen.generate(emb, n=2, seed=0)
    print(f"{name}: oracle accuracy {gen_accuracy(judge, imgs, ds.label):.3f}")
    rows.append(gen.generate(emb[:8], n=3, seed=1))
grid = np.concatenate(rows, axis=1)  # [8, k, 32, 32, 3]
grid = np.concatenate([np.concatenate(list(r), axis=1) for r in grid], axis=0)
from PIL import Image  # noqa: E402

Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(out_png)
print(f"wrote {out_png}")
