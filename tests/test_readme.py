"""The README's measured tables are written from the shipped results (scripts/readme_tables.py), never by hand."""

import subprocess
import sys

from s2v_lib.config import REPO_ROOT


def test_every_readme_table_equals_the_shipped_results():
    r = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "readme_tables.py"), "--check"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_check_notices_a_figure_typed_by_hand(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import readme_tables

    text = (REPO_ROOT / "README.md").read_text()
    rendered = readme_tables.render(text)
    assert readme_tables.render(rendered) == rendered  # writing twice changes nothing
    start = rendered.index("<!-- table:demo -->")
    end = rendered.index("<!-- /table -->", start)
    block = rendered[start:end]
    digit = next(i for i, c in enumerate(block) if c.isdigit() and i > len("<!-- table:demo -->"))
    tampered = rendered[: start + digit] + ("1" if block[digit] != "1" else "2") + rendered[start + digit + 1 :]
    readme = tmp_path / "README.md"
    readme.write_text(tampered)
    monkeypatch.setattr(readme_tables, "README", readme)
    assert readme_tables.main(["--check"]) == 1
