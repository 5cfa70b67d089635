"""aekit train --tensorboard: event files read back with TensorBoard's own reader, and the projector files."""

import math
import sys

import numpy as np
import pytest

import aekit

pytest.importorskip("tensorboard")


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tb") / "run"
    return aekit.train(dataset="mnist-sample", epochs=2, hidden=(16,), device="cpu", out=out, verbose=False,
                       progress=False, plots=False, tensorboard=True)


def test_scalars_and_images_read_back_with_tensorboards_reader(tb_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_run.path / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for split in ("train", "test"):
        for term in ("loss", "recon_loss", "reg_loss"):
            assert f"{split}/{term}" in tags["scalars"]
    assert not any(t.endswith("/kl") for t in tags["scalars"])  # a plain autoencoder has no penalty terms
    assert [e.value for e in acc.Scalars("train/loss")] == pytest.approx([m["train_loss"] for m in tb_run.metrics])
    assert [e.value for e in acc.Scalars("test/mse")] == pytest.approx([m["test_mse"] for m in tb_run.metrics])
    assert [e.step for e in acc.Scalars("test/loss")] == [m["step"] for m in tb_run.metrics]
    steps = [e.step for e in acc.Scalars("train/step_loss")]
    assert steps == list(range(25, tb_run.metrics[-1]["step"] + 1, 25))
    images = acc.Images("reconstructions")
    assert [e.step for e in images] == [0] + [m["step"] for m in tb_run.metrics]  # before training, each epoch
    # 2 rows of 10 images of 28x28 upscaled twice, with 2-pixel gaps
    assert (images[-1].height, images[-1].width) == (2 * 58 + 2, 10 * 58 + 2)


def test_the_projector_gets_codes_labels_and_a_sprite(tb_run):
    from google.protobuf import text_format
    from PIL import Image
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    log_dir = tb_run.path / "tensorboard"
    config = text_format.Parse((log_dir / "projector_config.pbtxt").read_text(), ProjectorConfig())
    (embedding,) = config.embeddings
    data = tb_run.load_data()
    n = len(data.x_test)
    codes = np.loadtxt(log_dir / embedding.tensor_path, delimiter="\t")
    np.testing.assert_allclose(codes, tb_run.encode(data.x_test), rtol=1e-4, atol=1e-5)
    labels = (log_dir / embedding.metadata_path).read_text().split()
    assert labels == [data.class_names[c] for c in data.y_test]
    side = math.ceil(math.sqrt(n)) * 28
    with Image.open(log_dir / embedding.sprite.image_path) as sprite:
        assert sprite.size == (side, side)
    assert list(embedding.sprite.single_image_dim) == [28, 28]


def test_cli_writes_where_asked_and_a_missing_extra_is_one_line(tmp_path, monkeypatch, capsys):
    from aekit.cli.main import main

    args = ["train", "--dataset", "mnist-sample", "--epochs", "1", "--hidden", "8", "--device", "cpu", "--quiet",
            "--no-plots"]
    assert main([*args, "--out", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb")]) == 0
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    capsys.readouterr()  # the first run's own lines (one epoch of a tiny model is told it is under-trained)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if the extra were not installed
    assert main([*args, "--out", str(tmp_path / "run2"), "--tensorboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["aekit train: error: --tensorboard needs aekit's tensorboard extra: "
                   "pip install 'aekit[tensorboard]'"]
    assert not (tmp_path / "run2").exists()


def test_every_named_loss_term_gets_its_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = aekit.train(dataset="mnist-sample", model="vae", hidden=(16,), latent_dim=2, epochs=1, device="cpu",
                      out=tmp_path / "vae", verbose=False, progress=False, plots=False, tensorboard=True)
    acc = EventAccumulator(str(run.path / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    for split in ("train", "test"):
        assert [e.value for e in acc.Scalars(f"{split}/kl")] == pytest.approx([m[f"{split}_kl"] for m in run.metrics])
