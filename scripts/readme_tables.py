"""Write the README's measured tables from the shipped results in data/results/ (never typed by hand).

    python scripts/readme_tables.py           # rewrite the blocks between <!-- table:NAME --> and <!-- /table -->
    python scripts/readme_tables.py --check   # exit 1 if the README's tables differ from the shipped results

``tests/test_readme.py`` runs the check, so a README figure always equals its shipped table's.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from s2v_lib import results, stats  # noqa: E402

README = REPO / "README.md"
BLOCK = re.compile(r"(<!-- table:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table_demo() -> str:
    m = results.load("demo", prefer_own=False)
    f = stats.fmt
    lines = [_row(["metric (`metrics.json` key)", "value (mean ± 95% half-width)", "what it means"]), "|---|---|---|"]
    lines += [
        _row(["`gen_top1_accuracy`", f(m["gen_top1_accuracy"]), "pictures drawn from held-out **sounds** whose most "
              "probable category, as the toy world's judge reads it, is the sound's"]),
        _row(["`gen_accuracy`", f(m["gen_accuracy"]), "lenient: the judge recognises the sound's category at all"]),
        _row(["`oracle_top1_accuracy`", f(m["oracle_top1_accuracy"]), "the same generator fed the **true frame's** "
              "image embedding (a reference, not a ceiling)"]),
        _row(["`same_category_at_1`", f(m["same_category_at_1"]), "the nearest held-out image embedding to a sound's "
              "embedding shows the sound's category"]),
        _row(["`r_at_1`, `r_at_5`", f"{f(m['r_at_1'])}, {f(m['r_at_5'])}", "instance retrieval among "
              f"{m['config']['n_test']} held-out clips (chance {stats.mean_of(m['r_at_k_chance']['r_at_1']):.3f}, "
              f"{stats.mean_of(m['r_at_k_chance']['r_at_5']):.3f})"]),
    ]  # fmt: skip
    return "\n".join(lines) + f"\n\n*{results.describe(m)}.*\n"


def table_ablate() -> str:
    from s2v_lib.ablation import markdown_table

    m = results.load("ablate", prefer_own=False)
    return markdown_table(m) + f"\n\n*{results.describe(m)}; {stats.INTERVAL_DEFINITION}.*\n"


FINDINGS = (  # (row a, row b, what is compared) for the ablation's findings, on judged top-1 accuracy
    ("sound2vision", "null_shuffled", "the paper's recipe against a shuffled sound"),
    ("sound2vision", "true_frame", "the paper's recipe against the true frame's embedding"),
    ("sound2vision", "prototype", "the paper's recipe against a perfect category-only encoder"),
    ("mse", "sound2vision", "regression (MSE) against the paper's loss"),
    ("l1", "sound2vision", "regression (L1) against the paper's loss"),
    ("infonce_cosine", "sound2vision", "cosine InfoNCE (the authors' scale 1) against InfoNCE-L2"),
    ("sound2scene", "sound2vision", "Sound2Scene's normalised InfoNCE-L2 against Sound2Vision's"),
    ("sound2vision", "pairing_middle", "SSL top-1 frames against middle frames"),
    ("sound2vision", "pairing_random", "SSL top-1 frames against random frames"),
    ("gap_shift", "sound2vision", "closing the gap with the validation gap vector against the raw embedding"),
    ("prior_affine", "sound2vision", "the affine prior against the raw embedding"),
    ("prior_retrieval", "sound2vision", "the retrieval prior against the raw embedding"),
    ("prior_diffusion", "sound2vision", "the diffusion prior against the raw embedding"),
    ("sound2vision", "generator_gan", "the diffusion generator against the GAN (same encoder)"),
)


def table_ablate_findings() -> str:
    m = results.load("ablate", prefer_own=False)
    rows = m["rows"]
    lines = []
    for a, b, what in FINDINGS:
        if a in rows and b in rows:
            verdict = stats.compare(rows[a]["gen_top1_accuracy"], rows[b]["gen_top1_accuracy"],
                                    names=(rows[a]["name"], rows[b]["name"]))  # fmt: skip
            lines.append(f"- {what}: {verdict} (top-1 {stats.fmt(rows[a]['gen_top1_accuracy'])} vs "
                         f"{stats.fmt(rows[b]['gen_top1_accuracy'])}).")  # fmt: skip
    for rid in ("true_frame", "sound2vision"):
        r = rows.get(rid, {})
        if "size_mae" in r:
            lines.append(f"- size read in the pictures of `{rid}`: error {stats.fmt(r['size_mae'])} px against "
                         f"{stats.fmt(r['size_mae_constant'])} px for a constant guess "
                         f"({stats.compare(r['size_mae'], r['size_mae_constant'], higher_is_better=False, names=('the pictures', 'the constant guess'))}); "
                         f"Spearman rho to the sound's size {stats.fmt(r['size_spearman'])}.")  # fmt: skip
    return "\n".join(lines) + "\n"


PRIORS = ("gap_shift", "prior_affine", "prior_retrieval", "prior_diffusion")


def table_priors() -> str:
    """Each correction of the raw audio embedding against the raw embedding: the goal is top-1 accuracy and FD (in
    the judge's independent space) both better beyond the intervals, without lowering diversity."""
    m = results.load("ablate", prefer_own=False)
    rows, f = m["rows"], stats.fmt
    raw = rows["sound2vision"]
    lines = [_row(["row", "top-1", "FD judge (lower is better)", "FD toy", "diversity", "goal"]), "|---|---|---|---|---|---|"]
    lines.append(_row([raw["name"], f(raw["gen_top1_accuracy"]), f(raw["frechet_judge"]), f(raw["frechet_toy"]),
                       f(raw["diversity"]), "(the reference)"]))  # fmt: skip
    for rid in PRIORS:
        if rid not in rows:
            continue
        r = rows[rid]
        checks = {"top-1": stats.beats(r["gen_top1_accuracy"], raw["gen_top1_accuracy"]),
                  "FD judge": stats.beats(r["frechet_judge"], raw["frechet_judge"], higher_is_better=False),
                  "diversity kept": not stats.beats(raw["diversity"], r["diversity"])}  # fmt: skip
        goal = "met" if all(checks.values()) else "not met: " + ", ".join(k for k, ok in checks.items() if not ok)
        lines.append(_row([r["name"], f(r["gen_top1_accuracy"]), f(r["frechet_judge"]), f(r["frechet_toy"]),
                           f(r["diversity"]), goal]))  # fmt: skip
    return "\n".join(lines) + f"\n\n*{results.describe(m)}; a figure is better only where the intervals do not overlap.*\n"


def table_ssl() -> str:
    m = results.load("ssl", prefer_own=False)
    f = stats.fmt
    lines = [_row(["measure", "SSL (ours)", "middle frame", "random frame"]), "|---|---|---|---|",
             _row(["the chosen frame shows the sounding object", f(m["selection_precision"]),
                   f(m["selection_precision_middle"]), f(m["selection_precision_random"])]),
             _row(["judged top-1 accuracy of pictures from an encoder trained on those frames",
                   f(m["gen_top1_accuracy_top1"]), f(m["gen_top1_accuracy_middle"]), "-"]),
             _row(["pointing game (the map's peak lies on the source)", f(m["pointing_game"]), "-", "-"])]  # fmt: skip
    return "\n".join(lines) + f"\n\n*{results.describe(m)}.*\n"


def table_control() -> str:
    m = results.load("control", prefer_own=False)
    f = stats.fmt
    lines = [_row(["edit", "measured", "reference"]), "|---|---|---|",
             _row(["source louder against the room -> bigger object (Spearman)", f(m["volume_size_spearman"]), "0 = no tie"]),
             _row(["whole clip louder -> bigger object (Spearman)", f(m["volume_size_spearman_whole_clip"]), "0 = no tie"]),
             _row(["two sounds mixed -> both objects judged", f(m["mix_both_rate"]),
                   f"one sound alone: {f(m['mix_both_rate_single'])}; true two-object frames' embeddings: "
                   f"{f(m['mix_both_rate_oracle'])}"]),
             _row(["interpolation paths that rise monotonically", f(m["interp_monotonic_rate"]), "-"]),
             _row(["edits along a sound direction that move size the intended way", f(m["edit_direction_rate"]),
                   "chance 0.5"])]  # fmt: skip
    return "\n".join(lines) + f"\n\n*{results.describe(m)}.*\n"


def table_geometry() -> str:
    m = results.load("geometry", prefer_own=False)
    f = stats.fmt
    lines = [_row(["variant", "centroid gap", "gap (L2-normalised)", "judged top-1 accuracy"]), "|---|---|---|---|"]
    for name, r in m["variants"].items():
        lines.append(_row([f"`{name}`", f(r["gap_centroid"]), f(r["gap_centroid_normalized"]),
                           f(r.get("gen_top1_accuracy"))]))  # fmt: skip
    return "\n".join(lines) + f"\n\n*{results.describe(m)}.*\n"


def table_ambiguity() -> str:
    from s2v_lib.ambiguity import markdown_tables

    m = results.load("ambiguity", prefer_own=False)
    return markdown_tables(m) + f"\n\n*{results.describe(m)}.*\n"


def table_limits() -> str:
    m = results.load("limits", prefer_own=False)
    f = stats.fmt
    lines = [_row(["where the attribute is read", "size error (px)", "shade error"]), "|---|---|---|"]
    for key, what in (("constant_guess", "a constant guess (training clips' median): the reference"),
                      ("judge_on_real_frames", "the judge, on the real frames"),
                      ("image_embedding_probe", "a linear probe of the frozen image encoder's embedding of the frame"),
                      ("generator_from_true_frame", "the judge, on pictures the generator drew from that embedding")):  # fmt: skip
        lines.append(_row([what, f(m[f"size_{key}"]), f(m[f"shade_{key}"])]))
    lines.append(_row(["drawn against true: Spearman rho / slope / mean bias (drawn - true)",
                       " / ".join(f(m[f"size_generator_{k}"], 2) for k in ("spearman", "slope", "bias")),
                       " / ".join(f(m[f"shade_generator_{k}"], 2) for k in ("spearman", "slope", "bias"))]))  # fmt: skip
    return "\n".join(lines) + f"\n\n*{results.describe(m)}.*\n"


def table_ambiguity_findings() -> str:
    m = results.load("ambiguity", prefer_own=False)
    lines = []
    for knob, by_loss in m["comparisons"].items():
        for verdicts in by_loss.values():
            top1 = verdicts["top1_accuracy"]
            others = [f"{metric}: {v}" for metric, v in verdicts.items() if metric != "top1_accuracy" and " beats " in v]
            lines.append(f"- ambiguity {knob}, judged top-1 accuracy: {top1}"
                         + (f"; elsewhere {'; '.join(others)}" if others else "; no other measure differs") + ".")  # fmt: skip
    return "\n".join(lines) + "\n"


TABLES = {name[len("table_"):]: fn for name, fn in globals().items() if name.startswith("table_")}


def render(text: str) -> str:
    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"README.md: no table named {name!r}; known: {', '.join(TABLES)}")
        return match.group(1) + TABLES[name]() + match.group(4)

    return BLOCK.sub(fill, text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only check that the README's tables are up to date")
    args = p.parse_args(argv)
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print("README.md: a table differs from data/results; run `python scripts/readme_tables.py`")
            return 1
        print("README.md: every table equals its shipped results")
        return 0
    README.write_text(new)
    print(f"README.md: {len(BLOCK.findall(text))} table(s) written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
