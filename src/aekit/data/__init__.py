"""Datasets for aekit: named sources and files, decoded into :class:`ImageData`.

Named sources (``mnist``, ``mnist-sample``, ``fashion-mnist``) resolve from a
data directory, the user cache, system copies, then a checksummed download;
paths may be IDX directories, CSV files or ``.npz`` archives. Images stay
uint8 until :func:`scale_images` turns them into floats on the device.

Only numpy is imported here; torch waits until :func:`scale_images` runs, so
``aekit --help`` stays fast.
"""

from aekit.data.imagedata import ImageData
from aekit.data.load import describe_sources, list_sources, load_dataset
from aekit.data.scaling import SCALES, scale_images
from aekit.data.sources import default_cache_dir

__all__ = [
    "ImageData",
    "SCALES",
    "default_cache_dir",
    "describe_sources",
    "list_sources",
    "load_dataset",
    "scale_images",
]
