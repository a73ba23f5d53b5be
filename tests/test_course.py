"""s2v_lib.course: the notebooks' set-up, Colab installation without touching torch, clear messages instead of stack
traces (in a real kernel), and the executed copies the book reuses."""

import importlib.metadata
import sys

import nbformat
import pytest

from s2v_lib import course
from s2v_lib.registry import ModelError


def test_require_returns_what_exists_and_says_how_to_make_what_does_not(tmp_path):
    assert course.require("data/models/manifest.json", "never shown") == course.REPO_ROOT / "data/models/manifest.json"
    assert course.require(tmp_path, "never shown") == tmp_path
    with pytest.raises(course.MissingStep) as err:
        course.require("runs/alignment/audio_encoder.safetensors", "run notebook 03 (03_alignment_training.ipynb) first")
    message = str(err.value)
    assert "runs/alignment/audio_encoder.safetensors" in message and "run notebook 03" in message
    assert str(course.REPO_ROOT) not in message  # said relative to the repository, as the notebooks say it
    assert isinstance(err.value, FileNotFoundError)


def test_torch_pins_keep_the_installed_torch_family(monkeypatch):
    pins = course.torch_pins()
    for dist in course.TORCH_FAMILY:
        assert f"{dist}=={importlib.metadata.version(dist)}" in pins
    colab = {"torch": "2.6.0+cu124", "torchvision": "0.21.0+cu124"}  # a Colab without torchaudio
    monkeypatch.setattr(course, "_installed", colab.get)
    assert course.torch_pins() == ["torch==2.6.0+cu124", "torchvision==0.21.0+cu124", "torchaudio==2.6.0"]
    monkeypatch.setattr(course, "_installed", {"torch": "2.6.0"}.get)
    assert course.torch_pins() == ["torch==2.6.0", "torchvision==0.21.*", "torchaudio==2.6.0"]


def test_install_course_is_an_editable_install_constrained_to_the_installed_torch(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, check):
        seen["cmd"] = cmd
        seen["constraints"] = open(cmd[cmd.index("-c") + 1]).read()

    monkeypatch.setenv("S2V_PROFILE", "full")
    cmd = course.install_course(tmp_path, run=fake_run)
    assert cmd == seen["cmd"] and cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert f"{tmp_path.resolve()}[full]" in cmd and "-e" in cmd
    assert not any("force" in part or part.startswith("torch") for part in cmd)  # never (re)installs torch itself
    assert f"torch=={importlib.metadata.version('torch')}" in seen["constraints"]
    monkeypatch.setenv("S2V_PROFILE", "toy")
    assert str(tmp_path.resolve()) in course.install_course(tmp_path, run=lambda cmd, check: None)


def test_setup_notebook_says_what_runs(monkeypatch, capsys):
    monkeypatch.setenv("S2V_THREADS", "1")
    info = course.setup_notebook()
    out = capsys.readouterr().out
    assert info["threads"] == 1 and info["profile"] == "toy" and info["device"] in ("cpu", "cuda")
    for word in ("s2v_lib", "torch", "torchaudio", "diffusers", "profile toy", "1 torch thread"):
        assert word in out


def test_setup_notebook_installs_only_on_colab_and_only_once(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(course, "install_course", lambda root=None: calls.append(root))
    monkeypatch.setenv("S2V_THREADS", "1")
    course.setup_notebook()
    assert calls == []  # not on Colab
    monkeypatch.setitem(sys.modules, "google.colab", object())
    course.setup_notebook()
    assert calls == []  # on Colab, already installed (the first cell did it)
    monkeypatch.setattr(course, "_installed", lambda dist: None)
    course.setup_notebook()
    assert calls == [course.REPO_ROOT]
    assert "Colab" in capsys.readouterr().out


def test_quick_audio_encoder_prefers_the_demo_encoder(tmp_path, monkeypatch, capsys):
    from s2v_lib.audio_encoder import AudioEncoder, save_audio_encoder

    monkeypatch.setattr(course, "REPO_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    save_audio_encoder(AudioEncoder(hidden=16), tmp_path / course.DEMO_ENCODER)
    model, history = course.quick_audio_encoder()
    assert history is None and model.config["hidden"] == 16
    assert "s2v demo" in capsys.readouterr().out


def test_strip_notebook_keeps_cells_and_tags_only():
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "other", "display_name": "O"}, "widgets": {"state": 1}})
    nb.cells = [nbformat.v4.new_markdown_cell("# t", metadata={"collapsed": True}),
                nbformat.v4.new_code_cell("1", execution_count=3, metadata={"tags": ["solution"], "scrolled": True},
                                          outputs=[nbformat.v4.new_output("stream", text="1")])]  # fmt: skip
    clean = course.strip_notebook(nb)
    nbformat.validate(clean)
    assert clean.metadata.kernelspec.name == "python3" and "widgets" not in clean.metadata
    assert clean.cells[0].metadata == {} and clean.cells[1].metadata == {"tags": ["solution"]}
    assert clean.cells[1].outputs == [] and clean.cells[1].execution_count is None
    assert [c.id for c in clean.cells] == [c.id for c in course.strip_notebook(nb).cells]  # deterministic ids
    assert nb.cells[1].outputs  # the original is untouched


def test_executed_copies_are_reused_only_while_up_to_date(tmp_path):
    source = tmp_path / "09_x.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nbformat.write(course.strip_notebook(nb), source)
    ran = course.strip_notebook(nb)
    ran.cells[0].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    course.keep_executed(ran, source, 1.5, by="test", folder=tmp_path / "executed")
    kept = course.executed_copy(source, tmp_path / "executed")
    assert kept.cells[0].outputs[0].text == "1\n" and kept.metadata.s2v.seconds == 1.5
    nb.cells[0].source = "print(2)"
    nbformat.write(course.strip_notebook(nb), source)
    assert course.executed_copy(source, tmp_path / "executed") is None  # the notebook changed: stale


# ----------------------------------------------------------------------------------------------------------------
# in a real Jupyter kernel: the errors a student can act on are one message, not a stack trace

FRIENDLY = """
import os
from s2v_lib.course import setup_notebook, require
setup_notebook()
"""


def _run_in_kernel(cells, env):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute(env={**env})
    return nb


def _error(cell):
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert len(errors) == 1, cell.outputs
    return errors[0]


def test_friendly_errors_in_a_kernel(monkeypatch):
    import os

    env = {**os.environ, "S2V_THREADS": "1", "HF_HUB_OFFLINE": "1", "S2V_PROFILE": "full", "S2V_QUIET": "1"}
    nb = _run_in_kernel([
        FRIENDLY,
        'require("runs/nowhere/audio_encoder.safetensors", "run notebook 03 (03_alignment_training.ipynb) first")',
        "from s2v_lib.registry import load_image_encoder\nload_image_encoder()  # full profile, no internet",
        "1 / 0  # an ordinary bug keeps its traceback",
    ], env)  # fmt: skip
    missing, offline, bug = (_error(nb.cells[i]) for i in (1, 2, 3))
    assert missing.ename == "MissingStep" and offline.ename == "ModelError"
    for err, words in ((missing, ("runs/nowhere", "run notebook 03")), (offline, ("S2V_PROFILE=toy",))):
        text = "\n".join(err.traceback)
        assert all(w in text for w in words), text
        assert "Traceback" not in text and "File " not in text and len(err.traceback) <= 3, text
    assert len("\n".join(bug.traceback).splitlines()) > 3  # ordinary errors are untouched


def test_model_error_message_names_the_fix():
    # what the friendly display shows is the exception's own text: it must say what to do
    assert course.explain(ModelError("x: missing; restore it with `git checkout -- data/models`")).startswith("ModelError: x")
