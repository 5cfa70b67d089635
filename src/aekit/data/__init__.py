"""Datasets for aekit: named sources and files, decoded into :class:`ImageData`.

Named sources (``mnist``, ``mnist-sample``, ``fashion-mnist``, ``cifar10``)
resolve from a data directory, the user cache, system copies, then a
checksummed download; paths may be folders of images (decoded once into a
memory-mapped cache, which :func:`cache_entries` lists and :func:`clear_cache`
clears), IDX directories, CSV files, ``.npz`` or ``.npy`` files.
Images stay uint8 until :func:`aekit.pixels.to_model` turns them into floats
on the device.

Only numpy is imported here (and Pillow or tqdm where a loader needs them), never torch.
"""

from aekit.data.cache import CacheEntry, cache_entries, clear_cache
from aekit.data.imagedata import ImageData
from aekit.data.load import describe_sources, list_sources, load_dataset
from aekit.data.sources import default_cache_dir

__all__ = [
    "CacheEntry",
    "ImageData",
    "cache_entries",
    "clear_cache",
    "default_cache_dir",
    "describe_sources",
    "list_sources",
    "load_dataset",
]
