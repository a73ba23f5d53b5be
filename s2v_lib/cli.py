"""The ``s2v`` command: every measuring command prints a short summary and writes ``--out DIR/metrics.json``.

    s2v demo --out runs/demo            the whole method on the toy profile
    s2v generate SOUND... --out DIR     pictures for your own recordings
    s2v pretrain STAGE                  (maintainers) re-train a frozen toy model
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_pretrain(args) -> int:
    from .pretrain import run_stage

    for stage in args.stages:
        run_stage(stage, device=args.device, seconds=args.seconds, n_clips=args.clips, workers=args.workers,
                  out=Path(args.out) if args.out else None, seed=args.seed)  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .pretrain import STAGES

    p = argparse.ArgumentParser(prog="s2v", description="Sound2Vision course: sound in, picture out.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    pp = sub.add_parser("pretrain", help="(maintainers) train the frozen toy models shipped in data/models")
    pp.add_argument("stages", nargs="+", choices=STAGES, metavar="STAGE", help=f"one or more of: {', '.join(STAGES)}")
    pp.add_argument("--device", default="cpu")
    pp.add_argument("--seconds", type=float, default=60.0, help="wall-time budget per stage")
    pp.add_argument("--clips", type=int, default=20000, help="pre-training clips (8 frames each)")
    pp.add_argument("--workers", type=int, default=1, help="processes that build the toy world")
    pp.add_argument("--seed", type=int, default=0)
    pp.add_argument("--out", default=None, help="models folder (default data/models)")
    pp.set_defaults(func=_cmd_pretrain)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
