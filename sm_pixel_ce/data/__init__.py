"""Datasets: generated scenes for tests and the default demo, and folders of your own images,
streamed through ``tf.data``."""

from .folder import (
    DataError,
    check_pair,
    check_pairs,
    decode_image,
    folder_dataset,
    list_files,
    load_folder,
    locate_bad_file,
    pair_by_stem,
    pair_files,
    read_mask,
    resize_mask,
)
from .scenes import CLASS_NAMES, NUM_CLASSES, make_scenes
from .sources import ArraySource, FolderSource, fingerprint

__all__ = [
    "ArraySource",
    "CLASS_NAMES",
    "DataError",
    "FolderSource",
    "NUM_CLASSES",
    "check_pair",
    "check_pairs",
    "decode_image",
    "fingerprint",
    "folder_dataset",
    "list_files",
    "load_folder",
    "locate_bad_file",
    "make_scenes",
    "pair_by_stem",
    "pair_files",
    "read_mask",
    "resize_mask",
]
