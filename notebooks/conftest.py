"""Notebook tests: ``python -m pytest`` executes every notebook here with nbval (``--nbval-lax``: every cell must run
without an error; outputs are not compared, since the notebooks are committed without them).

This plugin also
* gives the notebook kernels the machine's cores (``S2V_NOTEBOOK_THREADS``, default: all cores up to 8), while the
  library tests keep one thread each (``tests/conftest.py``);
* keeps every notebook that ran through, with its outputs, in ``book/_build/executed/`` (stamped with
  ``s2v_lib.course.execution_key``), so that building the book afterwards reuses them instead of executing again;
* prints each notebook's execution time at the end of the run;
* runs ``tests/test_book.py`` last, after the notebooks it can then reuse.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

_runs: dict[str, dict] = {}


def _is_notebook_cell(item) -> bool:
    return hasattr(item, "cell") and hasattr(item, "test_outputs") and hasattr(item.parent, "nb")


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: Path(str(item.fspath)).name == "test_book.py")  # stable: only moves the book last


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """The kernel starts in the first cell's setup: let it (and only it) see the notebook thread count."""
    if not _is_notebook_cell(item):
        yield
        return
    before = os.environ.get("S2V_THREADS")
    os.environ["S2V_THREADS"] = os.environ.get("S2V_NOTEBOOK_THREADS", str(min(os.cpu_count() or 1, 8)))
    os.environ.setdefault("S2V_QUIET", "1")  # no progress bars in executed outputs
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("S2V_THREADS", None)
        else:
            os.environ["S2V_THREADS"] = before


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if not _is_notebook_cell(item):
        return
    run = _runs.setdefault(str(item.fspath), {"seconds": 0.0, "ok": True, "cells": 0, "start": time.time()})
    run["seconds"] += call.duration
    report = outcome.get_result()
    if report.failed or report.skipped:
        run["ok"] = False
    if call.when == "call":
        run["cells"] += 1
        item.cell.outputs = list(item.test_outputs or [])
        item.cell.execution_count = run["cells"]
        for out in item.cell.outputs:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = run["cells"]


def pytest_runtest_teardown(item, nextitem):
    if not _is_notebook_cell(item) or (nextitem is not None and nextitem.parent is item.parent):
        return
    run = _runs.get(str(item.fspath))
    if run and run["ok"]:  # the whole notebook ran: keep it for the book
        from s2v_lib.course import keep_executed

        try:
            keep_executed(item.parent.nb, item.fspath, run["seconds"], by="nbval")
        except Exception as err:  # never fail a test because the book's copy could not be kept
            print(f"(could not keep the executed copy of {Path(str(item.fspath)).name}: {err})")


def pytest_terminal_summary(terminalreporter):
    if not _runs:
        return
    terminalreporter.section("notebook execution times")
    for path, run in sorted(_runs.items()):
        state = "" if run["ok"] else "  (failed or skipped)"
        terminalreporter.write_line(f"{Path(path).name:45s} {run['seconds']:6.1f} s{state}")
    terminalreporter.write_line(f"{'all notebooks':45s} {sum(r['seconds'] for r in _runs.values()):6.1f} s")
