"""Datasets: generated scenes for tests and the default demo."""

from .scenes import CLASS_NAMES, NUM_CLASSES, make_scenes

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "make_scenes"]
