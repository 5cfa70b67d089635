"""Each image of a folder is known by its file: through the cache, streaming, --scores, encode, worst.png, the report.

On real clip-art stamps (RGBA PNGs of many sizes) that ``scripts/test`` fetches into $AEKIT_TESTDATA, two
classes of six, one of them under a file name that is not UTF-8.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

import aekit
from aekit.cli.main import main
from aekit.data.decode import Decoding, decode

pytestmark = pytest.mark.usefixtures("isolated_cache")

LATIN1 = os.fsdecode(b"g\xe2teau.png")  # a name in Latin-1, not UTF-8
SHOWN = "g\\xe2teau.png"  # how aekit writes it out


@pytest.fixture
def stamps(testdata, tmp_path):
    source = testdata / "tuxpaint-stamps"
    if not source.is_dir():
        pytest.skip(f"no tuxpaint stamps in {testdata} (scripts/test fetches them from Debian)")
    root = tmp_path / "stamps"
    for name in ("clothes", "food"):
        (root / name).mkdir(parents=True)
        for path in sorted((source / name).rglob("*.png"))[:6]:
            shutil.copy(path, root / name / path.name)
    (root / "food" / "birthday_cake.png").rename(root / "food" / LATIN1)
    return root


def test_an_image_folder_names_its_files_from_training_to_the_report(stamps, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "conv", "--channels", "4,8", "--latent-dim", "2", "--epochs", "1",
                 "--batch-size", "4", "--device", "cpu", "--dataset", str(stamps), "--image-size", "32",
                 "--test-fraction", "0.34", "--max-memory", "0", "--out", str(out)]) == 0
    assert "stream batch by batch from the memory-mapped" in capsys.readouterr().err  # trained streaming
    run = aekit.load_run(out)
    data = run.load_data()
    names = {p: p.split("/")[0] for p in data.paths_train + data.paths_test}
    assert sorted(names) == sorted(str(p.relative_to(stamps)) for p in stamps.rglob("*.png"))
    decoding = Decoding((32, 32), 3, "crop", 255)  # the run's: --image-size 32, rgb, on white
    for split in ("train", "test"):  # each image is its file, decoded the run's way, labelled by its folder
        x, y, paths = getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), data.paths[split]
        assert [data.class_names[k] for k in y] == [names[p] for p in paths]
        for image, path in zip(x, paths):
            assert np.array_equal(image, decode(str(stamps / path), decoding)[0]), path
    assert len(data.paths_test) == 4

    scores_file = tmp_path / "scores.csv"
    assert main(["eval", str(out), "--quiet", "--semi-sizes", "2", "--scores", str(scores_file)]) == 0
    printed = capsys.readouterr().out
    with open(scores_file, newline="") as f:
        scores = list(csv.DictReader(f))
    shown = [p.replace(LATIN1, SHOWN) for p in data.paths_test]
    assert sorted(r["file"] for r in scores) == sorted(shown)
    assert all(r["class"] == r["file"].split("/")[0] == data.class_names[int(r["label"])] for r in scores)
    summary = json.loads((out / "eval.json").read_text())
    worst = summary["anomaly"]["worst"]
    assert [(w["file"], w["class"]) for w in worst] == [(r["file"], r["class"]) for r in scores]
    first = f"#{worst[0]['index']} {worst[0]['file']} (class {worst[0]['class']}, {worst[0]['error']:.4f})"
    assert first in printed and first in (out / "report.html").read_text()
    _assert_captions(out / "worst.png", data, worst)

    for suffix in ("csv", "npy"):
        assert main(["encode", str(out), "--split", "all", "--out", str(tmp_path / f"codes.{suffix}")]) == 0
    with open(tmp_path / "codes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    table = np.load(tmp_path / "codes.npy")
    expected = [p.replace(LATIN1, SHOWN) for p in data.paths_train + data.paths_test]
    assert [r["file"] for r in rows] == table["file"].tolist() == expected
    assert [r["class"] for r in rows] == table["class"].tolist() == [p.split("/")[0] for p in expected]
    np.testing.assert_allclose(table["z"], run.encode(np.concatenate([data.x_train, data.x_test])), rtol=1e-5)


def _assert_captions(picture_path: Path, data, worst: list[dict]) -> None:
    """Each row of worst.png: the test image (2x), its reconstruction, then the caption naming its file."""
    picture = np.asarray(Image.open(picture_path).convert("RGB"))
    row, grid_width = 64 + 2, 2 + 2 * (64 + 2)
    assert picture.shape[0] == 2 + len(worst) * row
    font = ImageFont.load_default(size=13)
    for k, w in enumerate(worst):
        cell = picture[2 + k * row:2 + k * row + 64:2, 2:66:2]
        assert np.array_equal(cell, data.x_test[w["index"]].transpose(1, 2, 0))
        caption = f"#{w['index']} {w['file']}\nclass {w['class']}, MSE {w['error']:.4f}"
        expected = Image.new("RGB", (picture.shape[1] - grid_width, row), "white")
        ImageDraw.Draw(expected).multiline_text((6, 2 + 32), caption, fill="black", font=font, anchor="lm")
        drawn = picture[k * row:(k + 1) * row, grid_width:]
        assert np.array_equal(drawn, np.asarray(expected)), f"row {k}: not captioned {caption!r}"
