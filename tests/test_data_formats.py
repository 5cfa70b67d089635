"""File formats: IDX (plain and gzip), CSV, .npz, and the path dispatcher.

Every file is written into tmp_path by the test itself; bad files must fail
with a DataError whose one-line message names the file and the problem.
"""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from aekit.data import ImageData, load_dataset
from aekit.errors import ConfigError, DataError
from aekit.pixels import to_model as scale_images

RNG = np.random.default_rng(0)


def idx_bytes(magic: int, arr: np.ndarray) -> bytes:
    """An IDX file as the format defines it: big-endian magic, one uint32 per dimension, raw uint8 values."""
    return struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes()


def write_idx_dir(directory, n_train=12, n_test=6, size=4, gz=True, dotted=False):
    """Write the four IDX files of a random set; return the arrays written."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": (0x803, RNG.integers(0, 256, (n_train, size, size))),
        "train-labels-idx1-ubyte": (0x801, np.arange(n_train) % 3),
        "t10k-images-idx3-ubyte": (0x803, RNG.integers(0, 256, (n_test, size, size))),
        "t10k-labels-idx1-ubyte": (0x801, np.arange(n_test) % 3),
    }
    for name, (magic, arr) in arrays.items():
        data = idx_bytes(magic, arr)
        if dotted:
            name = name.replace("-idx", ".idx")
        (directory / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
    return {name: arr for name, (_, arr) in arrays.items()}


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# --- IDX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_idx_directory_loads_exact_pixels_and_labels(tmp_path, gz):
    written = write_idx_dir(tmp_path / "set", gz=gz)
    data = load_dataset(str(tmp_path / "set"))
    assert isinstance(data, ImageData)
    assert data.x_train.shape == (12, 1, 4, 4) and data.x_train.dtype == np.uint8
    assert data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.x_train[:, 0], written["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.x_test[:, 0], written["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.y_test, written["t10k-labels-idx1-ubyte"])
    assert data.origin == str(tmp_path / "set")


def test_idx_gzip_is_detected_by_magic_bytes_not_suffix(tmp_path):
    write_idx_dir(tmp_path, gz=True)
    for gz_file in tmp_path.glob("*.gz"):
        gz_file.rename(gz_file.with_suffix(""))  # gzip content, no .gz suffix
    assert load_dataset(str(tmp_path)).x_train.shape == (12, 1, 4, 4)


def test_idx_dotted_names_are_accepted(tmp_path):
    write_idx_dir(tmp_path, gz=False, dotted=True)  # train-images.idx3-ubyte
    assert load_dataset(str(tmp_path)).x_test.shape == (6, 1, 4, 4)


def test_idx_wrong_magic_names_file_expected_and_found(tmp_path):
    write_idx_dir(tmp_path, gz=False)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(idx_bytes(0x801, np.zeros((12, 4, 4))))  # a label magic on an image file
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(tmp_path))
    message = one_line_error(excinfo)
    assert str(bad) in message and "wrong magic number" in message
    assert "0x00000801" in message and "0x00000803" in message


def test_idx_truncated_says_expected_and_found_bytes(tmp_path):
    write_idx_dir(tmp_path, gz=True)
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    full = idx_bytes(0x803, np.zeros((6, 4, 4)))
    bad.write_bytes(gzip.compress(full[:-10]))
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(tmp_path))
    message = one_line_error(excinfo)
    assert str(bad) in message and f"truncated (expected {len(full)} bytes, found {len(full) - 10})" in message


def test_idx_corrupt_gzip_is_a_data_error(tmp_path):
    write_idx_dir(tmp_path, gz=True)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:15])  # a cut-off download
    with pytest.raises(DataError, match="corrupt gzip") as excinfo:
        load_dataset(str(tmp_path))
    assert str(bad) in one_line_error(excinfo)


def test_idx_label_count_mismatch(tmp_path):
    write_idx_dir(tmp_path, gz=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(0x801, np.zeros(11)))
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(tmp_path))
    message = one_line_error(excinfo)
    assert "label count mismatch" in message and "11 labels for 12 images" in message and str(labels) in message


def test_idx_directory_missing_files_are_named(tmp_path):
    write_idx_dir(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(tmp_path))
    message = one_line_error(excinfo)
    assert "missing IDX files" in message
    assert "t10k-labels-idx1-ubyte" in message and "train-images-idx3-ubyte" in message
    assert "train-labels" not in message


def test_empty_directory_says_what_it_expected(tmp_path):
    with pytest.raises(DataError, match=r"no dataset files.*\*train\*\.csv"):
        load_dataset(str(tmp_path))


# --- CSV -------------------------------------------------------------------------------------------


def csv_rows(n, side=28, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    pixels = rng.integers(0, 256, (n, side * side))
    return np.column_stack([labels, pixels])


def write_csv(path, table, header=True):
    head = "label," + ",".join(f"pixel{i}" for i in range(table.shape[1] - 1)) + "\n" if header else ""
    path.write_text(head + "\n".join(",".join(map(str, row)) for row in table) + "\n")


@pytest.mark.parametrize("header", [True, False], ids=["header", "no-header"])
def test_csv_directory_with_and_without_header(tmp_path, header):
    train, test = csv_rows(30, seed=1), csv_rows(10, seed=2)
    write_csv(tmp_path / "mnist_train.csv", train, header)
    write_csv(tmp_path / "mnist_test.csv", test, header)
    data = load_dataset(str(tmp_path))
    assert data.x_train.shape == (30, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    np.testing.assert_array_equal(data.x_train.reshape(30, -1), train[:, 1:])
    np.testing.assert_array_equal(data.y_test, test[:, 0])


def test_single_csv_is_split_stratified_one_sixth_and_seeded(tmp_path):
    table = csv_rows(120)
    write_csv(tmp_path / "digits.csv", table)
    first = load_dataset(str(tmp_path / "digits.csv"))
    again = load_dataset(str(tmp_path / "digits.csv"))
    assert len(first.x_train) == 100 and len(first.x_test) == 20
    assert (np.bincount(first.y_test) == 2).all()  # 12 per class, 2 of each to test
    np.testing.assert_array_equal(first.y_test, again.y_test)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    # nothing lost or duplicated: the two parts together are the file's rows
    together = np.concatenate([first.x_train, first.x_test]).reshape(120, -1)
    assert sorted(map(bytes, together)) == sorted(map(bytes, table[:, 1:].astype(np.uint8)))


def test_csv_whole_number_floats_are_accepted(tmp_path):
    path = tmp_path / "floats.csv"
    path.write_text("\n".join(f"{i % 2}.0," + ",".join(["3.0"] * 4) for i in range(12)) + "\n")
    data = load_dataset(str(path))
    assert data.image_shape == (1, 2, 2) and (data.x_train == 3).all()


def test_csv_non_numeric_value_names_line_and_column(tmp_path):
    table = csv_rows(5).astype(str)
    table[3, 7] = "abc"
    path = tmp_path / "bad.csv"
    write_csv(path, table)  # header on line 1, so row 3 is line 5
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(path))
    message = one_line_error(excinfo)
    assert str(path) in message and "line 5, column 8" in message and "non-numeric" in message and "'abc'" in message


@pytest.mark.parametrize("value", ["256", "-1"])
def test_csv_out_of_range_pixel_names_line_column_and_value(tmp_path, value):
    table = csv_rows(5).astype(str)
    table[1, 100] = value
    path = tmp_path / "bad.csv"
    write_csv(path, table, header=False)
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(path))
    message = one_line_error(excinfo)
    assert "line 2, column 101" in message and "out-of-range" in message and value in message and "0..255" in message


def test_csv_ragged_row_is_a_wrong_column_count(tmp_path):
    path = tmp_path / "ragged.csv"
    rows = [",".join(map(str, row)) for row in csv_rows(4)]
    rows[2] = rows[2].rsplit(",", 1)[0]  # one pixel short
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(path))
    message = one_line_error(excinfo)
    assert "line 3" in message and "wrong column count" in message and "784 columns, expected 785" in message


def test_csv_non_square_pixel_count_is_a_wrong_image_size(tmp_path):
    path = tmp_path / "short.csv"
    write_csv(path, csv_rows(4)[:, :-1])  # 783 pixels
    with pytest.raises(DataError, match="wrong image size: 783 pixel columns"):
        load_dataset(str(path))


def test_csv_directory_with_two_train_files_is_ambiguous(tmp_path):
    for name in ("a_train.csv", "b_train.csv", "test.csv"):
        write_csv(tmp_path / name, csv_rows(3))
    with pytest.raises(DataError, match=r"exactly one \*train\*\.csv, found a_train.csv, b_train.csv"):
        load_dataset(str(tmp_path))


# --- npz ----------------------------------------------------------------------------------------


def npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    "shape, expected",
    [((8, 28, 28), (1, 28, 28)), ((8, 784), (1, 28, 28)), ((8, 3, 5, 5), (3, 5, 5)), ((8, 6, 6), (1, 6, 6))],
)
def test_npz_image_layouts(tmp_path, shape, expected):
    x = RNG.integers(0, 256, shape).astype(np.uint8)
    path = npz(tmp_path / "d.npz", x_train=x, y_train=np.arange(8) % 2, x_test=x[:3], y_test=np.zeros(3, int))
    data = load_dataset(path)
    assert data.image_shape == expected and len(data.x_test) == 3
    np.testing.assert_array_equal(data.x_train.reshape(shape), x)


def test_npz_integer_and_whole_float_pixels_in_range_are_accepted(tmp_path):
    x = RNG.integers(0, 256, (4, 4, 4))
    path = npz(tmp_path / "d.npz", x_train=x.astype(np.int64), y_train=np.zeros(4), x_test=x.astype(np.float32),
               y_test=np.zeros(4))
    data = load_dataset(path)
    np.testing.assert_array_equal(data.x_train, data.x_test)
    assert data.y_train.dtype == np.int64


@pytest.mark.parametrize(
    "x, problem",
    [
        (np.full((4, 4, 4), 300.0), "outside 0..255"),
        (np.full((4, 4, 4), -2), "outside 0..255"),
        (np.full((4, 4, 4), 0.5), "looks scaled to [0, 1]"),
    ],
)
def test_npz_rejects_pixel_values_it_cannot_take_as_0_255(tmp_path, x, problem):
    path = npz(tmp_path / "d.npz", x_train=x, y_train=np.zeros(4), x_test=x, y_test=np.zeros(4))
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    message = one_line_error(excinfo)
    assert problem in message and f"{path} (x_train)" in message


def test_npz_missing_array_is_named(tmp_path):
    path = npz(tmp_path / "d.npz", x_train=np.zeros((2, 4, 4), np.uint8), y_train=np.zeros(2))
    with pytest.raises(DataError, match="missing arrays x_test, y_test"):
        load_dataset(path)


def test_npz_label_count_mismatch(tmp_path):
    x = np.zeros((4, 4, 4), np.uint8)
    path = npz(tmp_path / "d.npz", x_train=x, y_train=np.zeros(3), x_test=x, y_test=np.zeros(4))
    with pytest.raises(DataError, match=r"label count mismatch: 3 labels for 4 images"):
        load_dataset(path)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    x = np.zeros((2, 4, 4), np.uint8)
    labels = np.array([1, "two"], dtype=object)
    path = npz(tmp_path / "d.npz", x_train=x, y_train=labels, x_test=x, y_test=labels)
    with pytest.raises(DataError, match="pickled objects"):
        load_dataset(path)


def test_npz_class_names_are_read(tmp_path):
    x = np.zeros((2, 4, 4), np.uint8)
    path = npz(tmp_path / "d.npz", x_train=x, y_train=[0, 1], x_test=x, y_test=[1, 0], class_names=["cat", "dog"])
    assert load_dataset(path).class_names == ["cat", "dog"]


def test_not_an_npz_archive(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"definitely not a zip")
    with pytest.raises(DataError, match="not an .npz archive"):
        load_dataset(str(tmp_path / "d.npz"))


# --- names and paths ---------------------------------------------------------------------------


def test_unknown_name_lists_the_named_sources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnsit")
    message = one_line_error(excinfo)
    assert "unknown dataset 'mnsit'" in message and "mnist, mnist-sample, fashion-mnist" in message


def test_missing_path_is_named(tmp_path):
    with pytest.raises(DataError, match="path not found"):
        load_dataset(str(tmp_path / "nowhere" / "data.csv"))


def test_unsupported_file_type(tmp_path):
    (tmp_path / "d.txt").write_text("1,2\n")
    with pytest.raises(DataError, match="unsupported file type .txt"):
        load_dataset(str(tmp_path / "d.txt"))


# --- scaling -----------------------------------------------------------------------------------


def test_scale_images_unit_and_centered():
    torch = pytest.importorskip("torch")
    x = torch.tensor([[0, 51, 255]], dtype=torch.uint8)
    unit = scale_images(x, "unit")
    centered = scale_images(x, "centered")
    assert unit.dtype == torch.float32 and unit.shape == x.shape
    torch.testing.assert_close(unit, torch.tensor([[0.0, 0.2, 1.0]]))
    torch.testing.assert_close(centered, torch.tensor([[-0.5, -0.3, 0.5]]))


def test_scale_images_rejects_unknown_scale_and_non_uint8():
    torch = pytest.importorskip("torch")
    with pytest.raises(ConfigError, match="unit, centered"):
        scale_images(torch.zeros(2, dtype=torch.uint8), "minmax")
    with pytest.raises(TypeError, match="uint8"):
        scale_images(torch.zeros(2, dtype=torch.int64), "unit")
    floats = torch.tensor([0.25, -0.5], dtype=torch.float64)  # already in the model's range: only cast
    assert torch.equal(scale_images(floats, "centered"), floats.float())
