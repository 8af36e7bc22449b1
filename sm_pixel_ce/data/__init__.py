"""Datasets: generated scenes for tests and the default demo, and folders of your own images."""

from .folder import DataError, folder_dataset, load_folder, pair_files
from .scenes import CLASS_NAMES, NUM_CLASSES, make_scenes

__all__ = [
    "CLASS_NAMES",
    "DataError",
    "NUM_CLASSES",
    "folder_dataset",
    "load_folder",
    "make_scenes",
    "pair_files",
]
