"""Progress bars for anything that takes more than a few seconds (tqdm; notebook-aware; off with S2V_QUIET=1)."""

from __future__ import annotations

import os

from tqdm.auto import tqdm


def progress(iterable=None, desc: str = "", total: int | None = None, **kwargs):
    quiet = os.environ.get("S2V_QUIET", "") not in ("", "0")
    return tqdm(iterable, desc=desc, total=total, disable=quiet, leave=False, dynamic_ncols=True, **kwargs)


class Budget:
    """How long a training loop runs: ``steps`` or ``max_seconds``, whichever ends first.

    ``lr_factor(step)`` is a warm-up + cosine schedule over the *fraction of the budget used*, so a loop bounded by
    wall time (as the frozen models' pre-training is) still anneals its learning rate to the end.
    """

    def __init__(self, steps: int, max_seconds: float | None = None, warmup: float = 0.03):
        import time

        self.steps, self.max_seconds, self.warmup = steps, max_seconds, warmup
        self._clock = time.time
        self.t0 = time.time()

    def elapsed(self) -> float:
        return self._clock() - self.t0

    def fraction(self, step: int) -> float:
        f = step / self.steps
        if self.max_seconds:
            f = max(f, self.elapsed() / self.max_seconds)
        return min(f, 1.0)

    def lr_factor(self, step: int) -> float:
        import math

        f = self.fraction(step)
        if f < self.warmup:
            return max(f / self.warmup, 0.01)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (f - self.warmup) / (1 - self.warmup)))

    def loop(self, desc: str):
        """Yields step numbers until the budget is spent, with a progress bar."""
        bar = progress(total=None if self.max_seconds else self.steps, desc=desc)
        step = 0
        while step < self.steps and not (self.max_seconds and self.elapsed() > self.max_seconds):
            yield step
            step += 1
            bar.update(1)
        bar.close()
        self.bar = bar

    @staticmethod
    def set_lr(opt, base_lr: float, factor: float) -> None:
        for group in opt.param_groups:
            group["lr"] = base_lr * factor
