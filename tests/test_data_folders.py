"""Image folders: layouts and labels, modes and sizes, broken files, the packed cache.

Images are written by the tests themselves with Pillow (uniform colours or
random pixels, so every expected value is known), plus a real photo folder
from two Debian packages that ``scripts/test`` fetches into $AEKIT_TESTDATA.
"""

from __future__ import annotations

import builtins
import os
import shutil
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit.data import folders, load_dataset, packing, png
from aekit.data.folders import FolderOptions, load_folder, parse_image_size
from aekit.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def decodes(monkeypatch):
    """Count the images decoded and headers read in this process (folders under 64 images stay in it)."""
    counts = Counter()

    def counting(module, name):
        real = getattr(module, name)

        def wrapper(*args):
            counts[name] += 1
            return real(*args)

        monkeypatch.setattr(module, name, wrapper)

    counting(packing, "decode")
    counting(folders, "probe")
    return counts


def save(path: Path, image: Image.Image | np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(image) if isinstance(image, np.ndarray) else image).save(path, **kwargs)
    return path


def random_rgb(h: int = 5, w: int = 6) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def chw(hwc: np.ndarray) -> bytes:
    return hwc.transpose(2, 0, 1).tobytes()


def load(root, log=None, **kwargs):
    notices = [] if log is None else log
    return load_dataset(str(root), log=notices.append, progress=False, **kwargs)


def images_of(data, label: int) -> list[np.ndarray]:
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    return list(x[y == label])


# --- layouts: class folders, flat, train/test -------------------------------------------------------


def test_class_subfolders_are_sorted_labels_with_exact_pixels_and_a_stratified_split(tmp_path):
    written = {"dog": [random_rgb() for _ in range(10)], "cat": [random_rgb() for _ in range(10)]}
    for name, images in written.items():
        for i, image in enumerate(images):
            save(tmp_path / "pets" / name / "nested" / f"{i}.png", image)
    data = load(tmp_path / "pets", test_fraction=0.2)
    assert data.labeled and data.class_names == ["cat", "dog"] and data.image_shape == (3, 5, 6)
    assert np.bincount(data.y_train).tolist() == [8, 8] and np.bincount(data.y_test).tolist() == [2, 2]
    for label, name in enumerate(data.class_names):
        assert sorted(x.tobytes() for x in images_of(data, label)) == sorted(chw(a) for a in written[name])
    assert isinstance(data.x_train, np.memmap) and data.name == "pets" and data.skipped == []


def test_a_flat_folder_is_unlabeled_and_split_by_test_fraction(tmp_path):
    for i in range(20):
        save(tmp_path / "flat" / f"{i:02d}.png", random_rgb())
    data = load(tmp_path / "flat")
    assert not data.labeled and data.y_train is None and data.y_test is None
    assert data.class_names == [] and data.num_classes == 0
    assert (len(data.x_train), len(data.x_test)) == (18, 2)
    again = load(tmp_path / "flat", test_fraction=0.5)
    assert (len(again.x_train), len(again.x_test)) == (10, 10)


def test_train_and_test_subfolders_are_the_split(tmp_path):
    root = tmp_path / "set"
    for split, counts in (("train", {"a": 5, "b": 3}), ("Test", {"a": 2, "c": 1})):
        for name, n in counts.items():
            for i in range(n):
                save(root / split / name / f"{i}.png", random_rgb())
    save(root / "val" / "a" / "0.png", random_rgb())
    notices = []
    data = load(root, notices, test_fraction=0.5)  # ignored: the folder has its own split
    assert data.class_names == ["a", "b", "c"]
    assert np.bincount(data.y_train, minlength=3).tolist() == [5, 3, 0]
    assert np.bincount(data.y_test, minlength=3).tolist() == [2, 0, 1]
    assert any("ignored 1 images outside train/ and Test/" in n for n in notices)


def test_flat_train_and_test_subfolders_are_an_unlabeled_split(tmp_path):
    for split, n in (("train", 6), ("test", 2)):
        for i in range(n):
            save(tmp_path / "s" / split / f"{i}.png", random_rgb())
    data = load(tmp_path / "s")
    assert not data.labeled and (len(data.x_train), len(data.x_test)) == (6, 2)


def test_train_with_classes_but_flat_test_is_an_error(tmp_path):
    save(tmp_path / "s" / "train" / "a" / "0.png", random_rgb())
    save(tmp_path / "s" / "test" / "0.png", random_rgb())
    with pytest.raises(DataError, match="train/ has class folders but test/ does not"):
        load(tmp_path / "s")


def test_images_beside_class_folders_make_the_set_unlabeled_with_a_note(tmp_path):
    for i in range(3):
        save(tmp_path / "s" / "a" / f"{i}.png", random_rgb())
    save(tmp_path / "s" / "stray.png", random_rgb())
    notices = []
    data = load(tmp_path / "s", notices)
    assert not data.labeled and len(data.x_train) + len(data.x_test) == 4
    assert any("1 images lie directly in the folder beside 3 in subfolders" in n for n in notices)


def test_hidden_files_and_other_file_types_are_ignored(tmp_path):
    save(tmp_path / "s" / "a.png", random_rgb())
    save(tmp_path / "s" / ".thumbs" / "b.png", random_rgb())
    (tmp_path / "s" / "notes.txt").write_text("not an image, and not named like one")
    data = load(tmp_path / "s", test_fraction=0.0)
    assert len(data.x_train) == 1 and len(data.x_test) == 0 and data.skipped == []


# --- modes and pixel values -------------------------------------------------------------------------


def mode_zoo(root: Path) -> None:
    """One uniform 4x4 image per mode, each in a class folder named after it (so labels tell them apart)."""
    size = (4, 4)
    save(root / "L" / "x.png", Image.new("L", size, 100))
    save(root / "RGB" / "x.png", Image.new("RGB", size, (10, 20, 30)))
    save(root / "RGBA" / "x.png", Image.new("RGBA", size, (200, 100, 0, 128)))
    save(root / "LA" / "x.png", Image.new("LA", size, (50, 0)))  # fully transparent
    palette = Image.new("P", size, 1)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    save(root / "P" / "x.gif", palette)  # blue, opaque
    save(root / "Ptrans" / "x.png", palette, transparency=1)  # blue, but index 1 is transparent
    save(root / "I16" / "x.png", Image.fromarray(np.array([[1000, 32896], [65535, 0]], np.uint16)).resize(size))
    save(root / "bit" / "x.bmp", Image.new("1", size, 1))
    save(root / "CMYK" / "x.tif", Image.new("CMYK", size, (0, 255, 255, 0)))  # pure red in ink


def first_pixel(data, name: str) -> list[int]:
    return images_of(data, data.class_names.index(name))[0][:, 0, 0].tolist()


def test_every_mode_converts_to_rgb_with_the_right_values(tmp_path):
    mode_zoo(tmp_path / "zoo")
    data = load(tmp_path / "zoo", test_fraction=0.0)
    assert data.image_shape == (3, 4, 4)  # auto: RGB, as some images are colour
    assert first_pixel(data, "L") == [100] * 3
    assert first_pixel(data, "RGB") == [10, 20, 30]
    # 200 * 128/255 + 255 * 127/255 = 227.4, and so on: straight alpha over white
    assert first_pixel(data, "RGBA") == [227, 177, 127]
    assert first_pixel(data, "LA") == [255] * 3
    assert first_pixel(data, "P") == [0, 0, 255]
    assert first_pixel(data, "Ptrans") == [255] * 3
    assert first_pixel(data, "bit") == [255] * 3
    assert first_pixel(data, "CMYK") == [255, 0, 0]


def test_alpha_on_black(tmp_path):
    mode_zoo(tmp_path / "zoo")
    data = load(tmp_path / "zoo", test_fraction=0.0, alpha_background="black")
    assert first_pixel(data, "RGBA") == [100, 50, 0]  # 200 * 128/255 = 100.4
    assert first_pixel(data, "LA") == [0] * 3 and first_pixel(data, "Ptrans") == [0] * 3


def test_16_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 32896, 65535]], np.uint16)
    save(tmp_path / "deep" / "x.png", Image.fromarray(values))
    save(tmp_path / "deep" / "y.tif", Image.fromarray(values))
    assert Image.open(tmp_path / "deep" / "x.png").mode.startswith("I")
    data = load(tmp_path / "deep", test_fraction=0.0)
    assert data.image_shape == (1, 1, 4)  # auto: all grey, so one channel
    for image in data.x_train:
        assert image[0, 0].tolist() == [0, 4, 128, 255]  # round(v * 255 / 65535); clipping would give 255s


def test_grayscale_uses_luma_and_auto_is_grey_for_grey_files(tmp_path):
    mode_zoo(tmp_path / "zoo")
    data = load(tmp_path / "zoo", test_fraction=0.0, color_mode="grayscale")
    assert data.image_shape == (1, 4, 4)
    assert first_pixel(data, "RGB") == [18]  # 0.299*10 + 0.587*20 + 0.114*30 = 18.15
    assert first_pixel(data, "L") == [100] and first_pixel(data, "LA") == [255]
    for colour in ("RGB", "RGBA", "P", "Ptrans", "CMYK"):
        shutil.rmtree(tmp_path / "zoo" / colour)
    assert load(tmp_path / "zoo", test_fraction=0.0).image_shape == (1, 4, 4)  # L, LA, I;16, 1 are all grey


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_the_plain_png_path_gives_pillows_pixels(tmp_path, mode):
    channels = len(mode)
    pixels = RNG.integers(0, 256, (9, 7, channels), dtype=np.uint8)
    path = save(tmp_path / "x.png", Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode))
    fast = png.open_plain(str(path))
    assert fast is not None and fast.mode == mode
    np.testing.assert_array_equal(np.asarray(fast), np.asarray(Image.open(path)))


def test_other_pngs_take_pillows_own_path(tmp_path):
    palette = save(tmp_path / "p.png", Image.new("P", (4, 4), 1))
    deep = save(tmp_path / "d.png", Image.fromarray(np.full((4, 4), 300, np.uint16)))
    keyed = save(tmp_path / "k.png", Image.new("RGB", (4, 4), (1, 2, 3)), transparency=(1, 2, 3))
    interlaced = save(tmp_path / "i.png", Image.new("L", (4, 4), 9))
    data = bytearray(interlaced.read_bytes())
    data[28] = 1  # IHDR's interlace method: Adam7 (Pillow writes no interlaced PNG itself)
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    interlaced.write_bytes(bytes(data))
    full = save(tmp_path / "t.png", Image.fromarray(random_rgb(32, 32)))
    truncated = tmp_path / "short.png"
    truncated.write_bytes(full.read_bytes()[:200])
    for path in (palette, deep, keyed, interlaced, truncated):
        assert png.open_plain(str(path)) is None, path.name


def test_jpeg_draft_decoding_stays_close_to_a_full_decode(tmp_path):
    y, x = np.mgrid[0:192, 0:256]
    smooth = np.stack([x, y, (x + y) // 2], axis=-1).astype(np.uint8)
    path = save(tmp_path / "s" / "x.jpg", smooth, quality=95)
    for color_mode, mode in (("grayscale", "L"), ("rgb", "RGB")):
        got = load(tmp_path / "s", image_size="32x24", color_mode=color_mode, test_fraction=0.0).x_train[0]
        reference = np.asarray(Image.open(path).convert(mode).resize((32, 24), Image.Resampling.BICUBIC))
        reference = reference[None] if mode == "L" else reference.transpose(2, 0, 1)
        assert got.shape == reference.shape and np.abs(got.astype(int) - reference).mean() < 2


# --- sizes ------------------------------------------------------------------------------------------------


def bands(w: int = 40, h: int = 20) -> np.ndarray:
    """Red, green, blue vertical bands of width w/4, w/2, w/4."""
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 4] = (255, 0, 0)
    image[:, w // 4: 3 * w // 4] = (0, 255, 0)
    image[:, 3 * w // 4:] = (0, 0, 255)
    return image


def test_crop_keeps_the_centre(tmp_path):
    save(tmp_path / "s" / "x.png", bands())
    image = load(tmp_path / "s", image_size=20, test_fraction=0.0).x_train[0]
    assert image.shape == (3, 20, 20)
    assert (image[1] == 255).all() and (image[0] == 0).all() and (image[2] == 0).all()  # all green


def test_stretch_squeezes_the_width(tmp_path):
    save(tmp_path / "s" / "x.png", bands())
    image = load(tmp_path / "s", image_size=20, resize="stretch", test_fraction=0.0).x_train[0]
    row = image[:, 10].T  # (W, 3)
    assert row[:4].tolist() == [[255, 0, 0]] * 4 and row[16:].tolist() == [[0, 0, 255]] * 4
    assert row[6:14].tolist() == [[0, 255, 0]] * 8


def test_pad_fits_inside_on_the_background(tmp_path):
    save(tmp_path / "s" / "x.png", bands())
    image = load(tmp_path / "s", image_size=20, resize="pad", test_fraction=0.0).x_train[0]
    assert (image[:, :5] == 255).all() and (image[:, 15:] == 255).all()  # white bars above and below
    middle = image[:, 10].T
    assert middle[0].tolist() == [255, 0, 0] and middle[10].tolist() == [0, 255, 0]
    assert middle[19].tolist() == [0, 0, 255]


def test_image_size_is_width_by_height():
    assert parse_image_size("64x48") == (64, 48) and parse_image_size(32) == (32, 32)
    assert parse_image_size("7") == (7, 7)
    assert parse_image_size([64, 48]) == (64, 48) and parse_image_size(None) is None  # a list: from a JSON config
    for bad in ("64x", "0", "x3", "big", -1, True, (64, 48, 3), (64.0, 48)):
        with pytest.raises(ConfigError, match="image_size"):
            parse_image_size(bad)


def test_a_wide_size_gives_wide_images(tmp_path):
    save(tmp_path / "s" / "x.png", bands())
    assert load(tmp_path / "s", image_size="8x4", test_fraction=0.0).image_shape == (3, 4, 8)


def test_without_a_size_the_most_common_size_wins_and_the_rest_are_resized_with_a_note(tmp_path):
    for i in range(3):
        save(tmp_path / "s" / f"small{i}.png", random_rgb(6, 6))
    save(tmp_path / "s" / "big.png", bands(12, 12))
    notices = []
    data = load(tmp_path / "s", notices, test_fraction=0.0)
    assert data.image_shape == (3, 6, 6)
    assert [n for n in notices if "resized" in n] == [
        f"{tmp_path / 's'}: 1 of 4 images are not 6x6, the most common size, and are resized to it (crop); "
        "set image_size to choose the size"]


def test_exif_orientation_is_applied(tmp_path):
    tall = np.zeros((8, 4, 3), np.uint8)
    tall[:4] = 255  # white top half
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    save(tmp_path / "s" / "x.jpg", Image.fromarray(tall).rotate(90, expand=True), exif=exif, quality=100)
    image = load(tmp_path / "s", test_fraction=0.0).x_train[0]
    assert image.shape == (3, 8, 4)
    assert image[:, :3].min() > 200 and image[:, 5:].max() < 50


# --- broken files ---------------------------------------------------------------------------------------


def broken_folder(root: Path, monkeypatch) -> None:
    for i in range(4):
        save(root / "good" / f"{i}.png", random_rgb())
    jpeg = save(root / "bad" / "truncated.jpg", random_rgb(64, 64), quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[:600])
    (root / "bad" / "empty.png").write_bytes(b"")
    (root / "bad" / "text.png").write_text("I am not a PNG")
    locked = save(root / "bad" / "locked.png", random_rgb())
    if os.geteuid() == 0:  # root reads anything: simulate what chmod 000 does to everyone else
        real_open = builtins.open

        def denying_open(file, *args, **kwargs):
            if str(file) == str(locked):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", denying_open)
    else:
        locked.chmod(0)


def test_broken_files_are_skipped_with_one_summary_line(tmp_path, monkeypatch):
    broken_folder(tmp_path / "s", monkeypatch)
    notices = []
    data = load(tmp_path / "s", notices, image_size=5, test_fraction=0.0)
    assert len(data.x_train) == 4 and data.y_train.tolist() == [1] * 4 and data.class_names == ["bad", "good"]
    reasons = {Path(p).name: reason for p, reason in data.skipped}
    assert reasons == {"empty.png": "empty file", "locked.png": "permission denied",
                       "text.png": "not an image Pillow can read", "truncated.jpg": "truncated file"}
    summary = [n for n in notices if "could not be read" in n]
    assert len(summary) == 1 and "skipped 4 of 8 image files that could not be read" in summary[0]
    assert "bad/empty.png (empty file)" in summary[0] and "and 1 more" in summary[0]


def test_broken_files_are_skipped_when_reading_headers_too(tmp_path, monkeypatch):
    broken_folder(tmp_path / "s", monkeypatch)
    data = load(tmp_path / "s", test_fraction=0.0)  # no size given: every header is read first
    assert len(data.x_train) == 4 and len(data.skipped) == 4


def test_strict_stops_at_the_first_broken_file(tmp_path, monkeypatch):
    broken_folder(tmp_path / "s", monkeypatch)
    with pytest.raises(DataError) as excinfo:
        load(tmp_path / "s", image_size=5, strict=True)
    message = str(excinfo.value)
    assert message.startswith(str(tmp_path / "s" / "bad" / "empty.png")) and "empty file" in message
    assert "\n" not in message


def test_strict_also_stops_when_the_packed_set_skipped_files(tmp_path, monkeypatch):
    broken_folder(tmp_path / "s", monkeypatch)
    load(tmp_path / "s", image_size=5)
    with pytest.raises(DataError, match="empty.png: cannot read this image"):
        load(tmp_path / "s", image_size=5, strict=True)


def test_empty_folder_and_nothing_readable_are_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no dataset files: expected images"):
        load(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_text("nope")
    (tmp_path / "junk" / "b.jpg").write_bytes(b"")
    for kwargs in ({}, {"image_size": 4, "color_mode": "rgb"}):  # found broken by header, and by decoding
        with pytest.raises(DataError, match="none of its 2 image files could be read"):
            load(tmp_path / "junk", **kwargs)


def test_a_split_that_leaves_no_training_image_is_an_error(tmp_path):
    for i in range(3):
        save(tmp_path / "s" / f"{i}.png", random_rgb())
    with pytest.raises(DataError, match="no training images: all 3 readable images are in the test split"):
        load(tmp_path / "s", test_fraction=0.9)


def test_image_settings_are_refused_for_other_sources(tmp_path):
    with pytest.raises(ConfigError, match="image_size: applies to image folders only"):
        load_dataset("mnist-sample", image_size=32)
    with pytest.raises(ConfigError, match="color_mode"):
        load_dataset("mnist-sample", color_mode="sepia")


# --- the packed cache ----------------------------------------------------------------------------------


def small_set(root: Path, n: int = 6) -> Path:
    for i in range(n):
        save(root / ("a" if i % 2 else "b") / f"{i}.png", random_rgb())
    return root


def test_second_load_maps_the_cache_without_decoding(tmp_path, decodes):
    root = small_set(tmp_path / "s")
    notices = []
    first = load(root, notices)
    assert decodes["decode"] == 6 and any("packed 6 images of 3x5x6" in n for n in notices)
    decodes.clear()
    notices.clear()
    second = load(root, notices)
    assert decodes == {} and notices == []
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


@pytest.mark.parametrize("change", ["touch", "modify", "add", "remove"])
def test_changing_a_file_rebuilds_the_cache_and_drops_the_old_entry(tmp_path, decodes, isolated_cache, change):
    root = small_set(tmp_path / "s")
    load(root)
    decodes.clear()
    target = root / "a" / "1.png"
    if change == "touch":
        os.utime(target, ns=(1, 1))
    elif change == "modify":
        save(target, np.zeros((5, 6, 3), np.uint8))
    elif change == "add":
        save(root / "a" / "new.png", random_rgb())
    else:
        target.unlink()
    data = load(root)
    n = {"add": 7, "remove": 5}.get(change, 6)
    assert decodes["decode"] == n and len(data.x_train) + len(data.x_test) == n
    if change == "modify":
        assert any(not x.any() for x in images_of(data, 0))
    assert len(list((isolated_cache / "folders").iterdir())) == 1


def test_a_changed_setting_replaces_the_folders_entry(tmp_path, decodes, isolated_cache):
    root = small_set(tmp_path / "s")
    load(root)
    (first,) = (isolated_cache / "folders").iterdir()
    assert load(root, image_size=3).image_shape == (3, 3, 3)
    (second,) = (isolated_cache / "folders").iterdir()
    assert second != first
    decodes.clear()
    assert load(root, image_size=3).image_shape == (3, 3, 3) and decodes == {}
    assert load(root).image_shape == (3, 5, 6) and decodes["decode"] == 6  # packed again: one entry per folder
    assert len(list((isolated_cache / "folders").iterdir())) == 1


def test_a_load_without_a_size_maps_the_entry_packed_at_the_folders_own_size(tmp_path, decodes, isolated_cache):
    root = small_set(tmp_path / "s")
    explicit = load(root, image_size="6x5", color_mode="rgb")
    decodes.clear()
    default = load(root)  # the most common size is 6x5, auto colour is rgb: the same images
    assert decodes == {} and default.paths_test == explicit.paths_test
    np.testing.assert_array_equal(default.x_train, explicit.x_train)
    assert load(root, image_size=6).image_shape == (3, 6, 6) and decodes["decode"] == 6
    assert len(list((isolated_cache / "folders").iterdir())) == 1


def test_an_entry_packed_by_an_older_aekit_is_mapped_with_its_paths_then_replaced(tmp_path, isolated_cache,
                                                                                    decodes):
    """An entry as aekit wrote it before files.json (its file list inside its settings, named by the key of
    version 1, no source) is mapped with its paths, packing nothing; the folder's next build removes it.
    """
    import hashlib
    import json

    root = small_set(tmp_path / "s")
    data = load(root)
    (entry,) = (isolated_cache / "folders").iterdir()
    meta = json.loads((entry / "meta.json").read_text())
    meta["settings"]["files"] = json.loads((entry / "files.json").read_text())
    del meta["source"], meta["key"]
    (entry / "files.json").unlink()
    (entry / "meta.json").write_text(json.dumps(meta))
    options = {"image_size": None, "resize": "crop", "color_mode": "auto", "alpha_background": "white",
               "test_fraction": 0.1}
    settings = json.dumps([1, str(root.resolve()), options, 0])  # version 1's key: path, options, split seed
    old = entry.rename(entry.with_name(f"s-{hashlib.sha256(settings.encode()).hexdigest()[:16]}-{_old_listing(root)}"))
    decodes.clear()
    again = load(root)
    assert decodes == {} and again.paths == data.paths and isinstance(again.x_train, np.memmap)
    load(root, image_size=3)  # another setting: packed again, and the old entry goes
    assert len(list((isolated_cache / "folders").iterdir())) == 1 and not old.exists()


def _old_listing(root: Path) -> str:
    """Version 1's hash of the listing: each file's relative path, size, mtime and permissions."""
    import hashlib
    import stat

    lines = []
    for path in sorted(root.rglob("*.png"), key=lambda p: p.relative_to(root).as_posix()):
        st = path.stat()
        lines.append(f"{path.relative_to(root).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\t{stat.S_IMODE(st.st_mode)}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


# --- file paths ------------------------------------------------------------------------------------


def assert_paths_name_the_images(data, root: Path) -> None:
    """Each image is its file's pixels, and a labelled image's class is its file's class folder."""
    for split in ("train", "test"):
        x, y, paths = getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), data.paths[split]
        assert len(paths) == len(x)
        for i, rel in enumerate(paths):
            assert x[i].tobytes() == chw(np.asarray(Image.open(root / rel))), rel
            if y is not None:
                assert data.class_names[y[i]] == rel.split("/")[-2]


def test_file_paths_follow_the_images_through_the_split_skipped_files_and_the_cache(tmp_path, decodes):
    root = tmp_path / "pets"
    for i in range(12):
        save(root / ("cat" if i % 3 else "dog") / f"{i:02d}.png", random_rgb())
    (root / "cat" / "05b.png").write_bytes(b"not a png")  # skipped: the paths close up with the images
    data = load(root, test_fraction=0.25)
    assert len(data.paths_train) + len(data.paths_test) == 12 and len(data.paths_test) >= 2 and len(data.skipped) == 1
    assert "cat/05b.png" not in data.paths_train + data.paths_test
    assert_paths_name_the_images(data, root)
    decodes.clear()
    again = load(root, test_fraction=0.25)
    assert decodes == {} and again.paths == data.paths


def test_file_paths_of_a_folders_own_split_keep_train_and_test_in_them(tmp_path):
    root = tmp_path / "set"
    for split, n in (("train", 4), ("test", 2)):
        for i in range(n):
            save(root / split / ("a" if i % 2 else "b") / f"{i}.png", random_rgb())
    data = load(root)
    assert {p.split("/")[0] for p in data.paths_train} == {"train"}
    assert {p.split("/")[0] for p in data.paths_test} == {"test"}
    assert_paths_name_the_images(data, root)


def test_a_file_name_that_is_not_utf8_keeps_its_bytes_and_prints_escaped(tmp_path, decodes):
    from aekit.io import printable

    root = tmp_path / "s"
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1, not UTF-8
    save(root / name, random_rgb())
    save(root / "plain.png", random_rgb())
    data = load(root, test_fraction=0.0)
    assert sorted(data.paths_train) == sorted([name, "plain.png"])
    assert_paths_name_the_images(data, root)  # the stored name still opens the file
    assert printable(name) == "caf\\xe9.png" and printable("plain.png") == "plain.png"
    decodes.clear()
    assert load(root, test_fraction=0.0).paths_train == data.paths_train and decodes == {}


def test_sources_without_files_have_no_paths():
    data = load_dataset("mnist-sample")
    assert data.paths_train is None and data.paths_test is None and data.paths is None


def test_an_interrupted_pack_leaves_no_entry_and_stale_temps_are_removed(tmp_path, monkeypatch, isolated_cache):
    root = small_set(tmp_path / "s")
    stale = isolated_cache / "folders" / ".s-0-0.999999999.dead.tmp"  # a pid no process has
    stale.mkdir(parents=True)
    calls, real = [], packing.decode

    def dies_on_the_third(path, decoding):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, decoding)

    monkeypatch.setattr(packing, "decode", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        load(root)
    assert list((isolated_cache / "folders").iterdir()) == []  # neither an entry nor a temp: the stale one went too
    monkeypatch.setattr(packing, "decode", real)
    assert len(load(root).x_train) == 6  # 3 per class: round(3 * 0.1) = 0 go to test


def test_a_corrupt_entry_is_rebuilt(tmp_path, isolated_cache, decodes):
    root = small_set(tmp_path / "s")
    load(root)
    (entry,) = (isolated_cache / "folders").iterdir()
    with open(entry / "images.u8", "r+b") as f:
        f.truncate(10)
    decodes.clear()
    assert len(load(root).x_train) == 6 and decodes["decode"] == 6


def test_the_process_pool_packs_the_same_bytes(tmp_path, monkeypatch):
    root = tmp_path / "s"
    for i in range(150):  # over the in-process limit
        save(root / str(i % 3) / f"{i}.png", random_rgb(7, 9))
    (root / "0" / "broken.png").write_bytes(b"\x89PNG broken")
    serial = load_folder(root, workers=1, log=lambda _: None)
    monkeypatch.setenv("AEKIT_CACHE", str(tmp_path / "other-cache"))
    pools, real = [], packing._parallel
    monkeypatch.setattr(packing, "_parallel", lambda *args: pools.append(args[-1]) or real(*args))
    pooled = load_folder(root, workers=2, log=lambda _: None)
    assert pools == [2]  # one pass, by two worker processes
    np.testing.assert_array_equal(serial.x_train, pooled.x_train)
    np.testing.assert_array_equal(serial.x_test, pooled.x_test)
    np.testing.assert_array_equal(serial.y_train, pooled.y_train)
    assert pooled.skipped == serial.skipped and len(pooled.skipped) == 1


@pytest.mark.parametrize("surprise", ["colour", "size"])
def test_a_wrong_guess_from_the_sample_of_headers_is_decoded_again(tmp_path, decodes, surprise):
    root = tmp_path / "s"
    if surprise == "colour":  # 600 grey images, then one in colour that the 512 sampled headers miss
        for i in range(600):
            save(root / f"a{i:03d}.png", np.full((4, 4), i % 256, np.uint8))
        save(root / "b.png", np.full((4, 4, 3), (1, 2, 3), np.uint8))
    else:  # 300 of 6x6 first, then 400 of 8x8: the sample sees more 6x6, the folder has more 8x8
        for i in range(700):
            save(root / f"{i:03d}.png", RNG.integers(0, 256, (6, 6) if i < 300 else (8, 8), dtype=np.uint8))
    data = load_folder(root, FolderOptions(test_fraction=0.0), workers=1, log=lambda _: None)
    n = len(data.x_train)
    assert decodes["decode"] == 2 * n and decodes["probe"] == 512
    if surprise == "colour":
        pixels = {tuple(p) for p in data.x_train[:, :, 0, 0].tolist()}
        assert data.image_shape == (3, 4, 4) and {(1, 2, 3), (5, 5, 5), (255, 255, 255)} <= pixels
    else:
        assert data.image_shape == (1, 8, 8)


def test_folder_options_are_checked():
    with pytest.raises(ConfigError, match="resize: 'squash' is not allowed; choose one of: crop, stretch, pad"):
        FolderOptions(resize="squash")
    with pytest.raises(ConfigError, match="test_fraction"):
        FolderOptions(test_fraction=1.0)


# --- a real photo folder -----------------------------------------------------------------------------


def pick(directory: Path, per_mode: dict[str, int], max_side: int) -> list[Path]:
    """The first files (sorted) of each mode up to the counts, no side over ``max_side``."""
    chosen, counts = [], Counter()
    for path in sorted(directory.rglob("*.png")):
        with Image.open(path) as im:
            if counts[im.mode] < per_mode.get(im.mode, 0) and max(im.size) <= max_side:
                counts[im.mode] += 1
                chosen.append(path)
    return chosen


@pytest.fixture
def photos(testdata, tmp_path):
    """Real photos: nebulae (RGB, palette, grey, RGBA; 128 and 256 px) and clip-art stamps (RGBA, LA, palette)."""
    nebulae, stamps = testdata / "stellarium-nebulae", testdata / "tuxpaint-stamps"
    if not (nebulae.is_dir() and stamps.is_dir()):
        pytest.skip(f"no real photos in {testdata} (scripts/test fetches them from Debian)")
    root = tmp_path / "photos"
    for name, files in (("nebulae", pick(nebulae, {"RGB": 4, "P": 3, "L": 2, "RGBA": 2}, 256)),
                        ("stamps", pick(stamps, {"RGBA": 3, "LA": 3, "P": 2}, 256))):
        (root / name).mkdir(parents=True)
        for path in files:
            shutil.copy(path, root / name / path.name)
    return root


def test_a_real_photo_folder(photos):
    notices = []
    data = load(photos, notices, test_fraction=0.0)
    files = {p.name: p for p in photos.rglob("*.png")}
    sizes = Counter(Image.open(p).size for p in files.values())
    (w, h), _ = sizes.most_common(1)[0]
    assert data.class_names == ["nebulae", "stamps"] and data.skipped == []
    assert data.image_shape == (3, h, w) and len(data.x_train) == len(files) == 19
    assert any(f"are not {w}x{h}, the most common size" in n for n in notices)
    # an RGB photo at the common size is its own pixels, to the byte
    rgb = next(p for p in sorted(files.values()) if Image.open(p).mode == "RGB" and Image.open(p).size == (w, h))
    expected = np.asarray(Image.open(rgb)).transpose(2, 0, 1)
    assert any((x == expected).all() for x in data.x_train)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_real_transparent_stamps_are_composited_on_white(photos, tmp_path, mode):
    stamp = next(p for p in sorted((photos / "stamps").iterdir()) if Image.open(p).mode == mode)
    save(tmp_path / "one" / stamp.name, Image.open(stamp))
    image = load(tmp_path / "one", test_fraction=0.0, color_mode="rgb").x_train[0].astype(int)
    rgba = np.asarray(Image.open(stamp).convert("RGBA")).astype(float)
    alpha = rgba[..., 3:] / 255
    expected = np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha)).transpose(2, 0, 1)
    assert (alpha == 0).mean() > 0.1  # a stamp: much of it is transparent
    assert np.abs(image - expected).max() <= 1


def test_a_real_photo_folder_at_a_chosen_size_in_grey(photos):
    data = load(photos, image_size="24x16", color_mode="grayscale", resize="pad")
    assert data.image_shape == (1, 16, 24) and len(data.x_train) + len(data.x_test) == 19
    assert len(data.x_test) == 2  # round(11 * 0.1) nebulae + round(8 * 0.1) stamps
