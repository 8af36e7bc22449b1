"""The second step of ``compare``: hold out the validation images, once for every variant and
seed, over the items of the data source (the file names of a folder)."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Split:
    """Training and validation data sources (``FolderSource`` or ``ArraySource``)."""

    train: object
    val: object


def split_indices(count, val_fraction, seed):
    """Shuffle ``range(count)`` with ``seed`` and hold out ``val_fraction`` (at least one each
    side).

    Args:
        count: Number of items (image/mask pairs, by file name).
        val_fraction: Fraction held out, in (0, 1).
        seed: Seed of the shuffle.

    Returns:
        ``(train, val)`` index arrays.
    """
    if count < 2:
        raise ValueError(
            f"Need at least 2 images to split into training and validation. Received {count}."
        )
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1). Received: val_fraction={val_fraction}")
    order = np.random.default_rng(seed).permutation(count)
    held = min(max(1, int(round(count * val_fraction))), count - 1)
    return order[held:], order[:held]


def split(source, val_fraction, seed):
    """Split a data source over its items (file names for a folder).

    Args:
        source: A ``FolderSource`` or ``ArraySource``.
        val_fraction: Fraction held out, in (0, 1).
        seed: Seed of the shuffle (see :func:`split_indices`).

    Returns:
        A :class:`Split`.

    Example:
        >>> held_out = split(FolderSource(pair_files("my_data"), 128), 0.25, seed=0)
    """
    train, val = split_indices(len(source), val_fraction, seed)
    return Split(source.subset(train), source.subset(val))
