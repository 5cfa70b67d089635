"""The packed-image cache: one entry per folder, listed and cleared by ``aekit cache`` and its Python API.

On real clip-art stamps (RGBA PNGs of many sizes) that ``scripts/test`` fetches into $AEKIT_TESTDATA.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from aekit.cli.main import main
from aekit.data import cache_entries, clear_cache, load_dataset


def _stamps(source: Path, dest: Path, classes=("clothes", "food"), n: int = 4) -> Path:
    for name in classes:
        (dest / name).mkdir(parents=True)
        for path in sorted((source / name).rglob("*.png"))[:n]:
            shutil.copy(path, dest / name / path.name)
    return dest


@pytest.fixture
def stamps(testdata, tmp_path):
    source = testdata / "tuxpaint-stamps"
    if not source.is_dir():
        pytest.skip(f"no tuxpaint stamps in {testdata} (scripts/test fetches them from Debian)")
    return _stamps(source, tmp_path / "stamps"), _stamps(source, tmp_path / "more", ("plants",), 3)


def _load(folder, notices=None, **settings):
    return load_dataset(str(folder), log=(notices if notices is not None else []).append, progress=False, **settings)


def _entries(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "folders").iterdir())


def test_loads_with_and_without_a_size_keep_one_entry_per_folder(stamps, isolated_cache):
    folder, _ = stamps
    sizes = {Image.open(p).size for p in folder.rglob("*.png")}
    notices = []
    assert _load(folder, notices, image_size=32).image_shape == (3, 32, 32)
    assert len(_entries(isolated_cache)) == 1 and sum("packed" in n for n in notices) == 1
    own = _load(folder, notices)  # the folder's own size: packed again, replacing the 32x32 entry
    _, h, w = own.image_shape
    assert (w, h) in sizes and (w, h) != (32, 32) and sum("packed" in n for n in notices) == 2
    (entry,) = _entries(isolated_cache)
    # the same images asked for explicitly, and again by default: that entry, mapped, nothing packed
    assert _load(folder, notices, image_size=f"{w}x{h}", color_mode="rgb").paths_test == own.paths_test
    assert _load(folder, notices).paths_train == own.paths_train
    assert sum("packed" in n for n in notices) == 2 and _entries(isolated_cache) == [entry]


def test_aekit_cache_lists_and_clears_only_its_own_entries(stamps, isolated_cache, capsys):
    folder, more = stamps
    _load(folder, image_size=32)
    _load(more, image_size=16, color_mode="grayscale", test_fraction=0.0)
    # what else lives in the cache directory, and must stay: downloads, baselines, a user's own folder
    # beside the entries, a directory whose meta.json is not aekit's, and a link to an entry
    for name in ("mnist/train-images-idx3-ubyte.gz", "baselines/pca-1.json", "folders/mine/notes.txt",
                 "folders/other/meta.json"):
        (isolated_cache / name).parent.mkdir(parents=True, exist_ok=True)
        (isolated_cache / name).write_text('{"format": "something else"}')
    real = next(e.path for e in cache_entries() if e.source == str(more.resolve()))
    (isolated_cache / "folders" / "link").symlink_to(real, target_is_directory=True)

    entries = cache_entries()
    assert [e.source for e in entries] == [str(more.resolve()), str(folder.resolve())]  # last used first
    listed = {e.source: e for e in entries}
    stamp = listed[str(folder.resolve())]
    assert stamp.kind == "folder" and stamp.images == 8 and stamp.shape == (3, 32, 32)
    assert stamp.nbytes > 8 * 3 * 32 * 32 and stamp.describe() == "32x32 rgb, crop, white background, test 0.1"
    assert listed[str(more.resolve())].describe() == "16x16 grey, crop, white background, test 0"

    assert main(["cache", "list"]) == 0
    printed = capsys.readouterr().out
    assert f"{isolated_cache}: 2 packed set(s)" in printed
    for text in (str(folder.resolve()), str(more.resolve()), "3x32x32", "1x16x16", "just now", "test 0.1"):
        assert text in printed

    assert main(["cache", "clear", str(folder), "--dry-run"]) == 0
    assert "would remove 1 packed set(s)" in capsys.readouterr().out and len(cache_entries()) == 2
    assert main(["cache", "clear", "--older-than", "1d"]) == 0  # both just used
    assert "removed 0 packed set(s)" in capsys.readouterr().out and len(cache_entries()) == 2

    os.utime(stamp.path / "meta.json", (time.time() - 3 * 86400,) * 2)  # unused for three days
    assert main(["cache", "clear", "--older-than", "2d"]) == 0
    assert f"removed {stamp.path}" in capsys.readouterr().out
    assert [e.source for e in cache_entries()] == [str(more.resolve())]

    assert main(["cache", "clear"]) == 0
    assert "removed 1 packed set(s)" in capsys.readouterr().out and cache_entries() == []
    left = sorted(str(p.relative_to(isolated_cache)) for p in isolated_cache.rglob("*"))
    assert left == ["baselines", "baselines/pca-1.json", "folders", "folders/link", "folders/mine",
                    "folders/mine/notes.txt", "folders/other", "folders/other/meta.json", "mnist",
                    "mnist/train-images-idx3-ubyte.gz"]
    assert json.loads((isolated_cache / "folders/other/meta.json").read_text()) == {"format": "something else"}
    assert len(_load(folder, image_size=32).x_train) == 8  # packed again on the next load


def test_clear_cache_in_python_keeps_to_one_folder(stamps, isolated_cache):
    folder, more = stamps
    _load(folder, image_size=16)
    _load(more, image_size=16)
    removed = clear_cache(folder=folder)
    assert [e.source for e in removed] == [str(folder.resolve())] and not removed[0].path.exists()
    assert [e.source for e in cache_entries()] == [str(more.resolve())]


def test_a_bad_age_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse's own exit, as for every bad flag
        main(["cache", "clear", "--older-than", "soon"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "'soon' is not an age; give a number with s, m, h, d or w, e.g. 30d" in err and len(err.splitlines()) == 1
