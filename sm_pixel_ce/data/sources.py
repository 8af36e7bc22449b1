"""Where ``compare`` reads its images from: a folder on disk, or arrays already in memory (the
generated scenes). Both give the same kind of ``tf.data`` stream, so training and scoring never
know which one they read, and neither ever holds more than a few batches.
"""

import hashlib

import numpy as np
import tensorflow as tf

from .folder import folder_dataset, folder_masks, locate_bad_file


class FolderSource:
    """Image/mask pairs on disk, decoded and resized as they are consumed.

    Args:
        pairs: ``(image_path, mask_path)`` list (see :func:`~sm_pixel_ce.data.pair_files`).
        size: Side images and masks are resized to.

    Example:
        >>> source = FolderSource(pair_files("my_data"), size=128)
        >>> train = source.subset([0, 2, 3])
        >>> for images, masks in train.dataset().batch(8): ...
    """

    def __init__(self, pairs, size):
        self.pairs = list(pairs)
        self.size = size

    def __len__(self):
        return len(self.pairs)

    @property
    def names(self):
        """The image path of every item, in order."""
        return [image for image, _ in self.pairs]

    def subset(self, indices):
        """The items at ``indices``, in that order."""
        return FolderSource([self.pairs[i] for i in indices], self.size)

    def dataset(self, shuffle_seed=None):
        """``(image, mask)`` elements: float32 ``(S, S, 3)`` in [0, 1], uint8 ``(S, S)``; with
        ``shuffle_seed``, shuffled afresh every pass (file names first, then decoded)."""
        return folder_dataset(self.pairs, self.size, shuffle_seed)

    def masks(self):
        """The uint8 ``(S, S)`` masks alone, in order (no image decoded)."""
        return folder_masks(self.pairs, self.size)

    def locate_error(self, error):
        """The :class:`~sm_pixel_ce.data.DataError` naming the file behind a ``tf.data``
        error, or None."""
        return locate_bad_file(self.pairs, error)


class ArraySource:
    """Images and masks held in memory (the generated scenes), streamed the same way.

    Args:
        images: float32 ``(N, S, S, 3)``.
        masks: uint8 ``(N, S, S)``.
        names: One name per item. Defaults to ``"scene <i>"``.
    """

    def __init__(self, images, masks, names=None):
        self.image_array, self.mask_array = images, masks
        self._names = (
            list(names) if names is not None else [f"scene {i}" for i in range(len(masks))]
        )
        self.size = int(np.shape(masks)[1])

    def __len__(self):
        return len(self.mask_array)

    @property
    def names(self):
        return list(self._names)

    def subset(self, indices):
        indices = np.asarray(indices, np.int64)
        return ArraySource(
            self.image_array[indices], self.mask_array[indices], [self._names[i] for i in indices]
        )

    def dataset(self, shuffle_seed=None):
        data = tf.data.Dataset.from_tensor_slices((self.image_array, self.mask_array))
        if shuffle_seed is not None:
            data = data.shuffle(len(self), seed=shuffle_seed, reshuffle_each_iteration=True)
        return data

    def masks(self):
        return tf.data.Dataset.from_tensor_slices(self.mask_array)

    def locate_error(self, error):
        return None


def fingerprint(names):
    """A short hash of an ordered list of names: tells whether two runs read the same files."""
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return digest[:16]
