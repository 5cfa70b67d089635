"""Your own images through the commands: the data settings as config fields and flags, skipped files."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import aekit
from aekit.cli.main import main
from aekit.rundir import RunDir

pytestmark = pytest.mark.usefixtures("isolated_cache")

FAST = ["--model", "conv", "--channels", "4,8", "--latent-dim", "2", "--epochs", "1", "--batch-size", "16",
        "--device", "cpu", "--no-plots"]


def _save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def wide_folder(tmp_path):
    """40 colour images of 20x12 in two classes, plus two 30x30 ones and one broken file."""
    rng = np.random.default_rng(0)
    for k in range(40):
        _save(tmp_path / "wide" / f"c{k % 2}" / f"{k:02d}.png", rng.integers(0, 256, (12, 20, 3), dtype=np.uint8))
    for k in range(2):
        _save(tmp_path / "wide" / "c0" / f"big{k}.png", rng.integers(0, 256, (30, 30, 3), dtype=np.uint8))
    (tmp_path / "wide" / "c1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return tmp_path / "wide"


def test_the_data_flags_shape_the_data_and_are_recorded_for_re_runs_and_every_command(wide_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", *FAST, "--dataset", str(wide_folder), "--image-size", "16", "--resize", "pad",
                 "--color-mode", "grayscale", "--test-fraction", "0.2", "--alpha-background", "black",
                 "--max-memory", "0", "--quiet", "--out", str(out)])
    assert code == 0
    data = json.loads((out / "config.json").read_text())["data"]
    assert data == {"dataset": str(wide_folder), "data_dir": None, "scale": "unit", "image_size": "16x16",
                    "resize": "pad", "color_mode": "grayscale", "alpha_background": "black", "test_fraction": 0.2,
                    "strict": False, "max_memory": "0"}
    run = aekit.load_run(out)
    assert run.model.input_shape == (1, 16, 16)
    loaded = run.load_data()  # with the run's settings: grey, 16x16, a fifth for test
    assert loaded.image_shape == (1, 16, 16) and len(loaded.x_test) == 8 and len(loaded.x_train) == 34
    # a 20x12 image padded on black into 16x16 (16x10 in the middle): the rows above and below it are black
    x = np.concatenate([loaded.x_train, loaded.x_test])
    padded = (x[:, :, :3] == 0).all(axis=(1, 2, 3)) & (x[:, :, 13:] == 0).all(axis=(1, 2, 3))
    assert padded.sum() == 40 and (x[:, :, 3:13].max(axis=(1, 2, 3)) > 0).all()  # the two 30x30 ones fill it

    assert main(["eval", str(out), "--quiet", "--semi-sizes", "2", "--probe-train", "0"]) == 0
    assert main(["encode", str(out), "--out", str(tmp_path / "codes.npy"), "--split", "all"]) == 0
    assert len(np.load(tmp_path / "codes.npy")) == 42
    again = tmp_path / "again"
    assert main(["train", "--config", str(out / "config.json"), "--out", str(again), "--quiet", "--no-plots"]) == 0
    assert _strip(RunDir(again).read_metrics()) == _strip(RunDir(out).read_metrics())  # the same data, again


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_skipped_files_are_listed_in_the_run_directory_and_the_summary_line(wide_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *FAST, "--dataset", str(wide_folder), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].endswith(
        f"1 unreadable data files skipped, listed in {out / 'skipped.txt'}")
    assert "skipped 1 of 43 image files that could not be read: c1/broken.png" in captured.err
    ((path, reason),) = RunDir(out).read_skipped()
    assert path == str(wide_folder / "c1" / "broken.png") and "not an image" in reason
    assert (out / "skipped.txt").read_text() == f"{path}\t{reason}\n"


def test_strict_stops_at_the_first_broken_file_with_one_line_and_leaves_no_run(wide_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *FAST, "--dataset", str(wide_folder), "--strict", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(wide_folder / "c1" / "broken.png") in err
    assert not out.exists()


@pytest.mark.parametrize("flag, value, message", [
    ("--image-size", "0", "data.image_size: '0' is not a size; give N or WIDTHxHEIGHT"),
    ("--image-size", "64by48", "data.image_size: '64by48' is not a size"),
    ("--resize", "squash", "data.resize: 'squash' is not allowed; choose one of: crop, stretch, pad"),
    ("--color-mode", "grey", "data.color_mode: 'grey' is not allowed; choose one of: auto, grayscale, rgb"),
    ("--alpha-background", "pink", "data.alpha_background: 'pink' is not allowed; choose one of: white, black"),
    ("--test-fraction", "1", "data.test_fraction: must be < 1.0, got 1.0"),
    ("--test-fraction", "-0.1", "data.test_fraction: must be >= 0.0, got -0.1"),
    ("--max-memory", "lots", "data.max_memory: 'lots' is not a memory size; give auto, 0 (always stream)"),
])
def test_a_bad_data_setting_is_one_line_naming_the_field(tmp_path, capsys, flag, value, message):
    assert main(["train", "--dataset", "mnist-sample", flag, value, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aekit train: error: {message}") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_image_settings_for_a_named_source_are_one_line(tmp_path, capsys):
    assert main(["train", "--dataset", "mnist-sample", "--image-size", "32", "--out", str(tmp_path / "r")]) == 2
    assert "image_size: applies to image folders only, and mnist-sample is not one" in capsys.readouterr().err


def test_the_python_api_takes_the_same_settings(wide_folder, tmp_path):
    run = aekit.train(dataset=str(wide_folder), image_size=[16, 8], color_mode="rgb", model="conv", channels="4",
                      latent_dim=2, epochs=1, device="cpu", out=tmp_path / "api", plots=False, verbose=False,
                      progress=False)
    assert run.config.data.image_size == "16x8" and run.model.input_shape == (3, 8, 16)
    assert os.path.exists(tmp_path / "api" / "skipped.txt")


# --------------------------------------------------------------------------- unlabeled and colour, end to end

def _copy_photos(source: Path, dest: Path, n: int) -> Path:
    """The first ``n`` photos of ``source`` (sorted), copied flat into ``dest``."""
    import shutil

    dest.mkdir(parents=True)
    for path in sorted(source.glob("*.png"))[:n]:
        shutil.copy(path, dest / path.name)
    return dest


@pytest.fixture
def nebulae(testdata):
    if not (testdata / "stellarium-nebulae").is_dir():
        pytest.skip(f"no real photos in {testdata} (scripts/test fetches them from Debian)")
    return testdata / "stellarium-nebulae"


def _colour(rgb: np.ndarray) -> float:
    """How far from grey an (H, W, 3) picture is: the mean spread between its channels."""
    rgb = rgb.astype(int)
    return float((rgb.max(axis=-1) - rgb.min(axis=-1)).mean())


def _pixels(path: Path, frame: int | None = None) -> np.ndarray:
    with Image.open(path) as image:
        if frame is not None:
            image.seek(frame)
        return np.asarray(image.convert("RGB"))


def test_a_flat_folder_of_real_photos_end_to_end(nebulae, tmp_path, capsys):
    """Unlabeled, colour, palette and RGBA files of three sizes: train, eval, encode, compare, plot, report."""
    photos = _copy_photos(nebulae, tmp_path / "photos", 48)
    out = tmp_path / "run"
    assert main(["train", "--model", "conv", "--channels", "8,16", "--latent-dim", "2", "--epochs", "3",
                 "--batch-size", "8", "--lr", "0.003", "--device", "cpu", "--dataset", str(photos),
                 "--image-size", "32", "--out", str(out)]) == 0
    assert "on photos [43 train / 5 test]" in capsys.readouterr().err
    run = aekit.load_run(out)
    data = run.load_data()
    assert data.labeled is False and data.image_shape == (3, 32, 32)
    assert _colour(data.x_test.transpose(0, 2, 3, 1)) > 5  # the photos are in colour

    # snapshots: the originals are the test images' own pixels, in colour (upscaled 2x, 2 px apart)
    snapshot = _pixels(out / "recon" / "epoch_000.png")
    for k in range(5):
        cell = snapshot[2:66, 2 + k * 66:66 + k * 66]
        assert np.array_equal(cell[::2, ::2], data.x_test[k].transpose(1, 2, 0))
    frames = Image.open(out / "recon.gif").n_frames
    first, last = _pixels(out / "recon.gif", 0), _pixels(out / "recon.gif", frames - 1)
    assert _colour(first[22:]) > 5 and np.abs(first[22:].astype(int) - snapshot).mean() < 6  # 256 colours
    assert _colour(last[22:]) > 5
    html = (out / "latent.html").read_text()
    assert "coloured by k-means cluster (k = 2; no labels)" in html and '"text":"k-means cluster"' in html
    assert _colour(_pixels(out / "manifold.png")) > 5

    assert main(["eval", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "eval.json").read_text())
    assert set(summary["results"]) == {"model", "pca"} and "knn_acc" not in summary["results"]["model"]
    assert summary["skipped"] == ["k-means accuracy/NMI/ARI, the kNN and logistic probes and the semi-supervised "
                                  "probes need labels, and photos has none"]
    assert f"Not computed: {summary['skipped'][0]}." in printed
    assert "worst reconstructions (test index, file, MSE)" in printed
    assert all(list(w) == ["index", "file", "error"] for w in summary["anomaly"]["worst"])
    assert {w["file"] for w in summary["anomaly"]["worst"]} == set(data.paths_test)
    worst = _pixels(out / "worst.png")  # a row per image: original, reconstruction (2x, 2 px apart), caption
    assert worst.shape[0] == 5 * 66 + 2 and worst.shape[1] > 2 * 66 + 2 and _colour(worst[:, :134]) > 5
    report = (out / "report.html").read_text()
    assert "Not computed: k-means accuracy" in report and "Test index, file, MSE: #" in report

    assert main(["encode", str(out), "--out", str(tmp_path / "codes.csv"), "--split", "all"]) == 0
    rows = [r.split(",") for r in (tmp_path / "codes.csv").read_text().splitlines()]
    assert rows[0] == ["split", "index", "file", "label", "class", "z0", "z1"] and len(rows) == 49
    assert {(r[3], r[4]) for r in rows[1:]} == {("-1", "")}  # no labels, no class
    assert [r[2] for r in rows[1:]] == data.paths_train + data.paths_test
    assert main(["eval", str(out), "--quiet", "--scores", str(tmp_path / "scores.csv"), "--out",
                 str(tmp_path / "e.json")]) == 0
    scores = [line.split(",") for line in (tmp_path / "scores.csv").read_text().splitlines()[1:]]
    assert {r[2] for r in scores} == {"-1"} and {r[1] for r in scores} == set(data.paths_test)

    capsys.readouterr()
    assert main(["compare", str(out), "--sort", "mse"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split("|")[-2].strip() == "pca_knn_acc" and table[2].split("|")[-2].strip() == "–"
    assert main(["plot", str(out), "--what", "grid", "--n", "2x3"]) == 0
    assert _colour(_pixels(out / "grid.png")) > 5
    assert main(["report", str(out)]) == 0


def test_a_labelled_colour_folder_keeps_its_class_names_and_colours(nebulae, tmp_path, capsys):
    """Two class folders of real colour photos: the labels' metrics, the class names in the code map."""
    root = tmp_path / "classes"
    photos = sorted(nebulae.glob("*.png"))
    _copy_photos(nebulae, root / "first", 20)
    for path in photos[20:40]:
        (root / "second").mkdir(exist_ok=True)
        (root / "second" / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "run"
    assert main(["train", "--model", "conv", "--channels", "4,8", "--latent-dim", "3", "--epochs", "1",
                 "--device", "cpu", "--dataset", str(root), "--image-size", "16", "--test-fraction", "0.25",
                 "--out", str(out), "--quiet"]) == 0
    html = (out / "latent.html").read_text()
    assert '"name":"first"' in html and '"name":"second"' in html and '"text":"class"' in html
    assert _colour(_pixels(out / "recon" / "epoch_000.png")) > 5
    assert main(["eval", str(out), "--quiet", "--semi-sizes", "2", "--probe-train", "0"]) == 0
    summary = json.loads((out / "eval.json").read_text())
    assert "skipped" not in summary and 0 <= summary["results"]["model"]["knn_acc"] <= 1
    assert summary["dataset"]["classes"] == 2 and all("label" in w for w in summary["anomaly"]["worst"])


def test_codes_without_labels_are_coloured_by_seeded_k_means_clusters_and_say_so():
    from aekit.visualization.latent import latent_view

    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(-5, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))])
    view = latent_view(z, None)
    assert view.color_by == "k-means cluster" and view.class_names == [f"cluster {c}" for c in range(7)]
    assert view.title == "2-D codes of 100 test images, coloured by k-means cluster (k = 7; no labels)"
    assert len(set(view.labels[:50]) & set(view.labels[50:])) == 0  # no cluster spans the two blobs
    assert np.array_equal(latent_view(z, None).labels, view.labels)  # seeded
    labelled = latent_view(z, np.repeat([0, 1], 50), ["a", "b"])
    assert labelled.color_by == "class" and labelled.title == "2-D codes of 100 test images"
    assert latent_view(rng.normal(size=(3, 16)), None).title.endswith("coloured by k-means cluster (k = 1; no labels)")


def test_a_caption_keeps_a_colour_picture_in_colour():
    from aekit.visualization.images import with_caption

    picture = np.zeros((10, 40, 3), np.uint8)
    picture[..., 0] = 200  # red
    captioned = with_caption(picture, "epoch 1", height=12)
    assert captioned.shape == (22, 40, 3) and np.array_equal(captioned[12:], picture)
    assert (captioned[:12] == captioned[:12, :, :1]).all() and captioned[:12].min() == 0  # black text on white
    assert with_caption(picture[..., 0], "epoch 1", height=12).shape == (22, 40)


@pytest.fixture
def flat_colour(tmp_path):
    """24 random colour images of 8x8, flat (unlabeled)."""
    rng = np.random.default_rng(3)
    for k in range(24):
        _save(tmp_path / "flat" / f"{k:02d}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return tmp_path / "flat"


def test_tensorboard_takes_unlabeled_colour_images(flat_colour, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = aekit.train(dataset=str(flat_colour), model="conv", channels="4", latent_dim=2, epochs=1, device="cpu",
                      out=tmp_path / "tb", plots=False, verbose=False, progress=False, tensorboard=True)
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    log_dir = run.path / "tensorboard"
    (embedding,) = text_format.Parse((log_dir / "projector_config.pbtxt").read_text(), ProjectorConfig()).embeddings
    assert (log_dir / embedding.metadata_path).read_text().split() == ["unlabeled"] * 2  # 2 test images
    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    acc.Reload()
    picture = Image.open(io.BytesIO(acc.Images("reconstructions")[0].encoded_image_string))
    assert picture.mode == "RGB" and _colour(np.asarray(picture)) > 5


def test_the_one_class_protocol_on_unlabeled_images_is_one_line(flat_colour, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *FAST, "--dataset", str(flat_colour), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--one-class", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("aekit eval: error: --one-class: each class in turn is the normal data, so it needs labels, "
                   "and flat has none")


def test_a_relative_dataset_path_is_recorded_resolved(tmp_path, monkeypatch):
    import json

    import numpy as np

    import aekit

    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "set.npz", x_train=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8),
             y_train=np.arange(40) % 2, x_test=rng.integers(0, 256, (10, 8, 8), dtype=np.uint8),
             y_test=np.arange(10) % 2)
    monkeypatch.chdir(tmp_path / "data")
    aekit.train(dataset="set.npz", hidden="8", latent_dim=2, epochs=1, out=tmp_path / "run", plots=False,
                verbose=False, progress=False, device="cpu")
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["data"]["dataset"]
    assert recorded == str(tmp_path / "data" / "set.npz")
    monkeypatch.chdir(tmp_path)
    assert aekit.load_run(tmp_path / "run").load_data().x_train.shape == (40, 1, 8, 8)
