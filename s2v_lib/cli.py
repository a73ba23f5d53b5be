"""The ``s2v`` command: every measuring command prints a short summary and writes ``--out DIR/metrics.json``.

    s2v demo --out runs/demo            the whole method on the toy profile
    s2v generate SOUND... --out DIR     pictures for your own recordings, each with its familiarity
    s2v familiarity --out DIR           how well familiarity tells toy clips from real recordings
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
                  out=Path(args.out) if args.out else None, seed=args.seed, init=args.init, lr=args.lr)  # fmt: skip
    return 0


def _cmd_demo(args) -> int:
    from .config import profile
    from .demo import DemoConfig, run_demo, summary
    from .full_demo import run_full_demo

    cfg = DemoConfig(epochs=args.epochs, loss=args.loss, pairing=args.pairing, generator=args.generator,
                     n_train=args.clips, seeds=_seeds(args), prior=args.prior)  # fmt: skip
    if profile() == "full":
        from .full_demo import summary as full_summary

        m = run_full_demo(args.out, cfg, force=args.force, data=args.data)
        if not m:  # a torchrun rank other than 0: rank 0 reports
            return 0
        print(full_summary(m))
        print(f"wrote {args.out}/metrics.json, gallery.png, training_curve.png, sounds/")
        return 0
    elif args.data is not None:
        raise ValueError("--data DIR (real clips) is read by the full profile: run with S2V_PROFILE=full; "
                         "the toy profile makes its own clips")  # fmt: skip
    else:
        m = run_demo(args.out, cfg, force=args.force)
    print(summary(m))
    print(f"wrote {args.out}/metrics.json, gallery.png, training_curve.png, sounds/")
    return 0


def _cmd_ssl(args) -> int:
    from .ssl import SSLBenchConfig, run_ssl_benchmark

    run_ssl_benchmark(args.out, force=args.force, config=SSLBenchConfig(seeds=_seeds(args)))
    return 0


def _cmd_geometry(args) -> int:
    from .geometry import GeometryConfig, run_geometry, summary

    print(summary(run_geometry(args.out, force=args.force, config=GeometryConfig(seeds=_seeds(args)))))
    print(f"wrote {args.out}/metrics.json, embeddings.npz, umap_*.png, gap_vs_accuracy.png")
    return 0


def _cmd_control(args) -> int:
    from .control import ControlConfig, run_control, summary

    print(summary(run_control(args.out, force=args.force, config=ControlConfig(seeds=_seeds(args)))))
    print(f"wrote {args.out}/metrics.json, volume.png, volume_size.png, mixing.png, interpolation.png, editing.png, "
          "sounds/")  # fmt: skip
    return 0


def _cmd_ablate(args) -> int:
    from .ablation import AblationConfig, run_ablation, summary

    cfg = AblationConfig(n_train=args.clips, epochs=args.epochs, n_diversity=args.diversity, n_fid=args.fid,
                         seeds=_seeds(args))  # fmt: skip
    if args.rows:
        cfg.rows = tuple(r.strip() for r in args.rows.split(",") if r.strip())
    print(summary(run_ablation(args.out, cfg, force=args.force)))
    print(f"wrote {args.out}/metrics.json, ablation.csv, ablation.md, ablation_grid.png, ablation_bars.png")
    return 0


def _cmd_ambiguity(args) -> int:
    from .ambiguity import AmbiguityConfig, run_ambiguity, summary

    sizes = {k: v for k, v in (("n_train", args.clips), ("epochs", args.epochs)) if v is not None}
    cfg = AmbiguityConfig(knobs=tuple(args.knobs), seeds=_seeds(args), **sizes)
    print(summary(run_ambiguity(args.out, cfg, force=args.force)))
    print(f"wrote {args.out}/metrics.json, ambiguity.md, ambiguity.png")
    return 0


def _cmd_limits(args) -> int:
    from .limits import LimitsConfig, run_limits, summary

    print(summary(run_limits(args.out, LimitsConfig(seeds=_seeds(args)), force=args.force)))
    print(f"wrote {args.out}/metrics.json, limits.png")
    return 0


def _cmd_generate(args) -> int:
    from .generate import exit_status, generate_from_files

    res = generate_from_files(args.sounds, args.out, encoder=args.encoder, generator=args.generator, n=args.n,
                              seed=args.seed)  # fmt: skip
    print(f"{len(res['written'])} sound(s) drawn ({len(res['unfamiliar'])} unfamiliar, {len(res['flagged'])} with a "
          f"warning), {len(res['failed'])} refused; see {args.out}/generated.json")  # fmt: skip
    return exit_status(res)


def _cmd_familiarity(args) -> int:
    from .familiarity import run_familiarity, summary

    print(summary(run_familiarity(args.out, encoder=args.encoder, n_toy=args.clips, force=args.force)))
    print(f"wrote {args.out}/metrics.json, scores.csv, familiarity.png")
    return 0


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} is not at least 1")
    return n


def _seeds(args) -> tuple[int, ...]:
    """``--seeds N``: the reported seeds 1 .. N (seed 0 is the tuning seed, never reported)."""
    from .experiment import reported_seeds

    return tuple(reported_seeds(args.seeds))


def _measuring_command(sub, name: str, help: str, seeds: int | None = 1) -> argparse.ArgumentParser:
    """A measuring command: ``--out DIR`` (default ``runs/<name>``), ``--force`` and ``--seeds N`` (each seed a
    different toy-world split and training seed; with N > 1 every figure gets a 95% interval; default ``seeds``,
    None: no such option)."""
    p = sub.add_parser(name, help=help)
    if seeds is not None:
        p.add_argument("--seeds", type=_positive_int, default=seeds, metavar="N",
                       help=f"report seeds 1..N (default {seeds}); settings were chosen on seed 0")  # fmt: skip
    p.add_argument("--out", default=f"runs/{name}", help=f"output folder (default runs/{name})")
    p.add_argument("--force", action="store_true", help="overwrite the results of an earlier run in --out")
    return p


def build_parser() -> argparse.ArgumentParser:
    from .losses import LOSSES
    from .pretrain import STAGES
    from .prior import PRIORS

    p = argparse.ArgumentParser(prog="s2v", description="Sound2Vision course: sound in, picture out.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    pd = _measuring_command(sub, "demo", help="the whole method on the toy profile: train, generate, measure")
    pd.add_argument("--epochs", type=int, default=2)
    pd.add_argument("--clips", type=int, default=4000, help="training clips")
    pd.add_argument("--loss", default="infonce_l2", choices=list(LOSSES))
    pd.add_argument("--prior", default=None, choices=list(PRIORS),
                    help="beyond the paper: draw from a prior's image embedding instead of the raw audio embedding")  # fmt: skip
    pd.add_argument("--pairing", default="top1", choices=["middle", "random", "top1", "truth"])
    pd.add_argument("--generator", default="toy-diffusion", choices=["toy-diffusion", "toy-gan"])
    pd.add_argument("--data", default=None, metavar="DIR",
                    help="full profile (S2V_PROFILE=full): a VGGSound/VEGAS-style folder of mp4 clips + CSV index")  # fmt: skip
    pd.set_defaults(func=_cmd_demo)

    pg = sub.add_parser("generate", help="pictures for your own sound files (wav, flac, ogg, mp3, video)",
                        epilog="Each sound's familiarity (nearest toy sound, distance to the training sounds) is "
                        "printed and written to generated.json. Exit status: 0 all drawn; 1 some file refused (the "
                        "others are still drawn); 3 none refused, some read with a warning (e.g. truncated).")  # fmt: skip
    pg.add_argument("sounds", nargs="+", metavar="SOUND", help="sound or video files")
    pg.add_argument("--out", default="runs/generate", help="output folder (default runs/generate)")
    pg.add_argument("--n", type=int, default=4, help="pictures per sound")
    pg.add_argument("--seed", type=int, default=0)
    pg.add_argument("--encoder", default="runs/demo/audio_encoder.safetensors",
                    help="trained audio encoder (default: the one `s2v demo` wrote)")  # fmt: skip
    pg.add_argument("--generator", default=None, help="toy-diffusion (default in the toy profile) or toy-gan")
    pg.set_defaults(func=_cmd_generate)

    pf = _measuring_command(sub, "familiarity", help="how familiar sounds are: held-out toy clips vs real recordings",
                            seeds=None)  # fmt: skip
    pf.add_argument("--encoder", default="runs/demo/audio_encoder.safetensors",
                    help="trained audio encoder (default: the one `s2v demo` wrote, with its reference)")  # fmt: skip
    pf.add_argument("--clips", type=int, default=400, help="held-out toy clips (read from files)")
    pf.set_defaults(func=_cmd_familiarity)

    ps = _measuring_command(sub, "ssl", help="sound-source localisation and frame selection, measured on ground truth")
    ps.set_defaults(func=_cmd_ssl)

    pgeo = _measuring_command(sub, "geometry", help="modality gap and UMAP of audio vs image embeddings, per loss variant")
    pgeo.set_defaults(func=_cmd_geometry)

    pc = _measuring_command(sub, "control", help="controllability: volume, mixing, interpolation and editing, measured")
    pc.set_defaults(func=_cmd_control)

    pa = _measuring_command(sub, "ablate", help="the paper's ablations (loss, frame choice, generator, oracle) in one table")
    pa.add_argument("--clips", type=int, default=4000, help="training clips (as s2v demo)")
    pa.add_argument("--epochs", type=int, default=2)
    pa.add_argument("--rows", default=None, help="comma-separated row ids (default: all but pairing_random)")
    pa.add_argument("--diversity", type=int, default=32, help="held-out sounds drawn twice, for diversity (0: skip)")
    pa.add_argument("--fid", type=int, default=0, help="held-out sounds in the Inception FID (default 0: skip the slow Inception network; e.g. 64)")
    pa.set_defaults(func=_cmd_ablate)

    pam = _measuring_command(sub, "ambiguity", help="InfoNCE-L2 vs MSE vs cosine InfoNCE as sound determines less of a frame",
                             seeds=3)  # fmt: skip
    pam.add_argument("--knobs", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 0.5, 1.0],
                     help="ambiguity settings, comma-separated (default 0,0.5,1)")  # fmt: skip
    pam.add_argument("--clips", type=int, default=None, help="training clips per seed and setting (default 1024)")
    pam.add_argument("--epochs", type=int, default=None, help="default 8")
    pam.set_defaults(func=_cmd_ambiguity)

    pl = _measuring_command(sub, "limits", help="where a picture loses size and shade: judge, image encoder or generator")
    pl.set_defaults(func=_cmd_limits)

    pp = sub.add_parser("pretrain", help="(maintainers) train the frozen toy models shipped in data/models")
    pp.add_argument("stages", nargs="+", choices=STAGES, metavar="STAGE", help=f"one or more of: {', '.join(STAGES)}")
    pp.add_argument("--device", default="cpu")
    pp.add_argument("--seconds", type=float, default=60.0, help="wall-time budget per stage")
    pp.add_argument("--clips", type=int, default=20000, help="pre-training clips (8 frames each)")
    pp.add_argument("--workers", type=int, default=1, help="processes that build the toy world")
    pp.add_argument("--seed", type=int, default=0)
    pp.add_argument("--out", default=None, help="models folder (default data/models)")
    pp.add_argument("--init", action="store_true", help="continue training the generator already in --out")
    pp.add_argument("--lr", type=float, default=None, help="learning rate (default: the stage's own)")
    pp.set_defaults(func=_cmd_pretrain)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, run, and turn the errors a user can act on into one line on stderr (exit 1; usage errors exit 2)."""
    args = build_parser().parse_args(argv)
    from .audio import AudioError
    from .demo import OutputExists
    from .registry import ModelError

    try:
        return int(args.func(args) or 0)
    except (ModelError, OutputExists, AudioError, FileNotFoundError, NotImplementedError, ValueError) as err:
        print(f"s2v {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"s2v {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
