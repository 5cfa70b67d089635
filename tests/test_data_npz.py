"""``.npz`` and ``.npy`` image arrays in every layout, with and without labels; unlabeled ImageData."""

from __future__ import annotations

import numpy as np
import pytest

from aekit.data import ImageData, load_dataset
from aekit.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def nchw(n=20, c=3, h=5, w=7) -> np.ndarray:
    return RNG.integers(0, 256, (n, c, h, w), dtype=np.uint8)


def all_images(data) -> list[bytes]:
    return sorted(x.tobytes() for x in np.concatenate([data.x_train, data.x_test]))


@pytest.mark.parametrize(
    "layout",
    ["NCHW", "NHWC", "NHW", "N1HW", "NHW1"],
)
def test_npy_layouts_are_read_from_the_channel_axis(tmp_path, layout):
    x = nchw(c=1 if "1" in layout or layout == "NHW" else 3)
    stored = {"NCHW": x, "NHWC": x.transpose(0, 2, 3, 1), "NHW": x[:, 0], "N1HW": x,
              "NHW1": x.transpose(0, 2, 3, 1)}[layout]
    np.save(tmp_path / "x.npy", stored)
    data = load_dataset(str(tmp_path / "x.npy"))
    assert data.image_shape == x.shape[1:] and data.x_train.flags.c_contiguous
    assert all_images(data) == sorted(img.tobytes() for img in x)  # the same pixels, whatever the layout
    assert not data.labeled and (len(data.x_train), len(data.x_test)) == (18, 2)


@pytest.mark.parametrize("shape, problem", [((4, 3, 5, 3), "is ambiguous: axis 1 and axis 3 could both"),
                                            ((4, 2, 5, 4), "has no channel axis of 1 or 3")])
def test_a_4d_shape_without_one_channel_axis_is_a_clear_error(tmp_path, shape, problem):
    np.save(tmp_path / "x.npy", np.zeros(shape, np.uint8))
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(tmp_path / "x.npy"))
    assert f"x.npy: image shape {shape} {problem}" in str(excinfo.value)


def test_npz_x_and_y_are_split_stratified_by_test_fraction(tmp_path):
    x, y = nchw(40), np.repeat([0, 1], 20)
    np.savez(tmp_path / "d.npz", x=x.transpose(0, 2, 3, 1), y=y, class_names=["cat", "dog"])
    data = load_dataset(str(tmp_path / "d.npz"), test_fraction=0.25)
    assert data.class_names == ["cat", "dog"]
    assert np.bincount(data.y_train).tolist() == [15, 15] and np.bincount(data.y_test).tolist() == [5, 5]
    for images, labels in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        for image, label in zip(images, labels):  # every image kept its own label
            i = next(i for i in range(40) if (x[i] == image).all())
            assert y[i] == label


def test_a_split_that_leaves_no_training_image_is_an_error(tmp_path):
    np.save(tmp_path / "x.npy", nchw(2))
    with pytest.raises(DataError, match="no training images: all 2 images are in the test split"):
        load_dataset(str(tmp_path / "x.npy"), test_fraction=0.9)


def test_npz_images_alone_are_unlabeled(tmp_path):
    np.savez(tmp_path / "d.npz", images=nchw(10, c=1)[:, 0])
    data = load_dataset(str(tmp_path / "d.npz"))
    assert not data.labeled and data.image_shape == (1, 5, 7) and len(data.x_test) == 1


def test_npz_with_labels_under_their_other_name(tmp_path):
    np.savez(tmp_path / "d.npz", images=nchw(10), labels=np.arange(10) % 2)
    assert load_dataset(str(tmp_path / "d.npz")).num_classes == 2


def test_npz_train_test_arrays_may_be_channels_last(tmp_path):
    x = nchw(6)
    nhwc = x.transpose(0, 2, 3, 1)
    np.savez(tmp_path / "d.npz", x_train=nhwc, y_train=np.zeros(6), x_test=nhwc[:2], y_test=np.zeros(2))
    data = load_dataset(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(data.x_train, x)


def test_npz_with_neither_layout_names_what_it_expected(tmp_path):
    np.savez(tmp_path / "d.npz", pixels=nchw(4))
    with pytest.raises(DataError, match="expected x_train, y_train, x_test, y_test, or x with an optional y"):
        load_dataset(str(tmp_path / "d.npz"))


def test_npy_of_objects_is_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickled objects"):
        load_dataset(str(tmp_path / "x.npy"))


def test_image_settings_are_refused_for_arrays(tmp_path):
    np.save(tmp_path / "x.npy", nchw(4))
    with pytest.raises(ConfigError, match="resize: applies to image folders only"):
        load_dataset(str(tmp_path / "x.npy"), resize="pad")


def test_unlabeled_imagedata():
    x = np.zeros((3, 1, 2, 2), np.uint8)
    data = ImageData("u", x, None, x[:1], None)
    assert not data.labeled and data.class_names == [] and data.num_classes == 0
    with pytest.raises(ValueError, match="both splits"):
        ImageData("u", x, np.zeros(3, np.int64), x[:1], None)
    with pytest.raises(ValueError, match="class_names given for an unlabeled set"):
        ImageData("u", x, None, x[:1], None, class_names=["a"])
    labelled = ImageData("l", x, np.array([0, 2, 1]), x[:1], np.array([1]))
    assert labelled.labeled and labelled.class_names == ["0", "1", "2"]
