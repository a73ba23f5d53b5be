import json
import shutil

import pytest
import torch

from s2v_lib.registry import (
    ModelError,
    load_generator,
    load_image_encoder,
    load_judge,
    load_toy_model,
    read_manifest,
    save_model,
    sha256,
)


def test_shipped_models_load_by_name_and_the_manifest_says_how_they_were_made():
    assert load_image_encoder("toy").dim == 128
    assert load_generator("toy-diffusion").emb_dim == 128
    assert load_generator("toy-gan").emb_dim == 128
    assert load_judge("toy") is not None
    manifest = read_manifest()
    for entry in manifest.values():
        assert {"sha256", "command", "seed", "seconds", "class", "config"} <= set(entry)
        assert entry["command"].startswith("s2v pretrain")


def test_shipped_weights_stay_light():
    from s2v_lib.config import models_dir

    total = sum(p.stat().st_size for p in models_dir().glob("*.safetensors"))
    assert total < 30e6


@pytest.fixture
def model_copy(tmp_path):
    from s2v_lib.config import models_dir

    folder = tmp_path / "models"
    shutil.copytree(models_dir(), folder)
    return folder


def test_tampered_weights_name_file_checksum_and_rebuild_command(model_copy):
    path = model_copy / "toy-judge.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    expected = read_manifest(model_copy)["toy-judge"]["sha256"]
    with pytest.raises(ModelError) as err:
        load_toy_model("toy-judge", folder=model_copy)
    msg = str(err.value)
    assert str(path) in msg and expected[:16] in msg and "s2v pretrain judge" in msg


def test_missing_weights_are_a_clear_error(model_copy):
    (model_copy / "toy-gan.safetensors").unlink()
    with pytest.raises(ModelError, match="missing.*s2v pretrain gan"):
        load_toy_model("toy-gan", folder=model_copy)


def test_unknown_names():
    with pytest.raises(ModelError, match="unknown image encoder"):
        load_image_encoder("resnet-9000")
    with pytest.raises(ModelError, match="unknown generator"):
        load_generator("dall-e")


def test_save_model_roundtrip_and_manifest(tmp_path):
    from s2v_lib.metrics import ToyJudge

    torch.manual_seed(0)
    m = ToyJudge(width=8)
    save_model(m, "toy-judge", {"seed": 0, "seconds": 1.0}, folder=tmp_path, half=False)
    entry = json.loads((tmp_path / "manifest.json").read_text())["toy-judge"]
    assert entry["sha256"] == sha256(tmp_path / "toy-judge.safetensors") and entry["config"]["width"] == 8
    m2 = load_toy_model("toy-judge", folder=tmp_path)
    x = torch.rand(2, 3, 32, 32)
    m.eval()
    assert torch.allclose(m(x), m2(x), atol=1e-5)
    # weights are safetensors only: the file is not a pickle
    assert not (tmp_path / "toy-judge.safetensors").read_bytes().startswith(b"\x80")
