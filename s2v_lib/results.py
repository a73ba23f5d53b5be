"""The course's measured tables: your own run in ``runs/<name>/`` when there is one, else the shipped one in
``data/results/<name>/`` (written by the same command with ``--seeds 3``; see ``data/results/README.md``).

Notebooks and the README quote figures only through here, so a figure in prose is always read from a table that a
command wrote, never typed by hand::

    from s2v_lib import results
    ablate = results.load("ablate")          # runs/ablate/metrics.json, or data/results/ablate/metrics.json
    results.describe(ablate)                 # "shipped table: s2v ablate --seeds 3 ..., seeds [1, 2, 3]"
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import REPO_ROOT, data_dir

COMMANDS = {  # name -> the command that writes the table (shown when it is missing)
    "ablate": "s2v ablate --seeds 3 --out runs/ablate",
    "ssl": "s2v ssl --seeds 3 --out runs/ssl",
    "control": "s2v control --seeds 3 --out runs/control",
    "geometry": "s2v geometry --seeds 3 --out runs/geometry",
    "demo": "s2v demo --out runs/demo",
    "ambiguity": "s2v ambiguity --out runs/ambiguity",
    "loudness": "s2v loudness --out runs/loudness",
    "limits": "s2v limits --seeds 3 --out runs/limits",
}


def own_dir(name: str) -> Path:
    return REPO_ROOT / "runs" / name


def shipped_dir(name: str) -> Path:
    return data_dir() / "results" / name


def results_dir(name: str, prefer_own: bool = True) -> Path:
    """Where the table ``name`` is read from: ``runs/<name>`` if it holds a finished run (and ``prefer_own``), else
    ``data/results/<name>``. Raises ``FileNotFoundError`` saying which command makes it when neither exists."""
    for folder in ([own_dir(name)] if prefer_own else []) + [shipped_dir(name)]:
        if (folder / "metrics.json").exists():
            return folder
    how = COMMANDS.get(name, f"s2v {name} --out runs/{name}")
    raise FileNotFoundError(f"no results for {name!r}: neither runs/{name}/metrics.json nor the shipped "
                            f"data/results/{name}/metrics.json exists; run `{how}`")  # fmt: skip


def load(name: str, prefer_own: bool = True) -> dict:
    """The table's ``metrics.json`` plus ``_path`` (where it was read) and ``_source`` ("your run" or "shipped")."""
    folder = results_dir(name, prefer_own)
    m = json.loads((folder / "metrics.json").read_text())
    m["_path"] = str(folder)
    m["_source"] = "your run" if folder == own_dir(name) else "shipped"
    return m


def describe(m: dict) -> str:
    """One line saying where a table comes from: which command, seeds, and when."""
    seeds = m.get("seeds")
    cmd = m.get("command") or ""
    where = m.get("_path", "")
    try:  # repository-relative, so that the line reads the same on every machine
        where = str(Path(where).resolve().relative_to(REPO_ROOT.resolve()))
    except ValueError:
        pass
    bits = [f"{m.get('_source', 'table')} ({where})"]
    if cmd:
        bits.append(f"made by `{cmd}`")
    if seeds:
        bits.append(f"reported seeds {seeds}")
    if m.get("tuning_seed") is not None:
        bits.append(f"settings chosen on seed {m['tuning_seed']}")
    return ", ".join(bits)
