"""The pinned set CI installs (requirements.txt), the conda file and pyproject's ranges must agree."""

import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def pins(lines):
    out = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        if "==" in line:
            name, version = line.split("==")
            out[re.sub(r"[-_.]+", "-", name.lower())] = version
    return out


def test_environment_yml_pins_the_same_packages_as_requirements():
    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    text = (ROOT / "environment.yml").read_text()
    conda = pins(text.split("- pip:")[1].splitlines())
    assert req == conda
    assert {"torch", "torchvision", "torchaudio", "diffusers", "open-clip-torch", "umap-learn", "jupytext", "nbval"} <= set(req)


def test_pyproject_ranges_accept_the_pins():
    import tomllib

    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    for spec in deps:
        r = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", r.name.lower())
        if name in req:
            assert r.specifier.contains(req[name]), (spec, req[name])
