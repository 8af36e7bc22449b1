"""Where ``compare`` reads its images from: a folder on disk, or arrays already in memory (the
generated scenes). Both give the same kind of ``tf.data`` stream, so training and scoring never
know which one they read, and neither ever holds more than a few batches.
"""

import hashlib

import numpy as np
import tensorflow as tf

from .folder import FolderReader
from .images import ImageKind, preview

#: Images per batch of the statistics pass of :meth:`FolderSource.normalization`.
_STATISTICS_BATCH = 32


class FolderSource:
    """Image/mask pairs on disk, decoded and resized as they are consumed.

    Args:
        pairs: ``(image_path, mask_path)`` list (see :meth:`~sm_pixel_ce.data.FolderReader.pair`).
        size: Side images and masks are resized to.
        reader: The :class:`~sm_pixel_ce.data.FolderReader` that reads them; None for a
            default one (3-channel images, index masks). Defaults to None.

    Example:
        >>> source = FolderSource(pair_files("my_data"), size=128)
        >>> train = source.subset([0, 2, 3])
        >>> for images, masks in train.dataset().batch(8): ...
    """

    def __init__(self, pairs, size, reader=None):
        self.pairs = list(pairs)
        self.size = size
        self.reader = reader if reader is not None else FolderReader()
        self._statistics = None

    def __len__(self):
        return len(self.pairs)

    @property
    def names(self):
        """The image path of every item, in order."""
        return [image for image, _ in self.pairs]

    @property
    def kind(self):
        """The images' :class:`~sm_pixel_ce.data.images.ImageKind` (sample type, channels)."""
        return self.reader.image_kind(self.names)

    @property
    def channels(self):
        """Channels of every image as streamed: a model's input channels."""
        return self.kind.channels

    def subset(self, indices):
        """The items at ``indices``, in that order."""
        return FolderSource([self.pairs[i] for i in indices], self.size, self.reader)

    def dataset(self, shuffle_seed=None):
        """``(image, mask)`` elements: float32 ``(S, S, C)`` (pixel values divided by their
        type's maximum), masks ``(S, S)`` of uint8 (uint16 beyond 256 values); with
        ``shuffle_seed``, shuffled afresh every pass (file names first, then decoded)."""
        return self.reader.dataset(self.pairs, self.size, shuffle_seed)

    def masks(self):
        """The ``(S, S)`` masks alone, in order (no image decoded)."""
        return self.reader.mask_dataset(self.pairs, self.size)

    def locate_error(self, error):
        """The :class:`~sm_pixel_ce.data.DataError` naming the file behind a ``tf.data``
        error, or None."""
        return self.reader.locate_error(self.pairs, error)

    def normalization(self):
        """The per-band standardisation a model of these images starts with: ``(mean,
        variance)`` lists over every pixel of every image (as streamed: scaled and resized),
        for uint16 and float data; None for uint8 images, which models take as they are.

        One streamed pass, made on the first call and kept. A band of one value gets variance
        1, so that it is only centred.

        Example:
            >>> mean, variance = source.subset(train).normalization()
            >>> keras.layers.Normalization(mean=mean, variance=variance)
        """
        if not self.kind.standardised:
            return None
        if self._statistics is None:
            count, mean, m2 = 0, np.zeros(self.channels), np.zeros(self.channels)
            images = self.reader.image_dataset(self.names, self.size)
            for batch in images.batch(_STATISTICS_BATCH).as_numpy_iterator():
                pixels = batch.reshape(-1, batch.shape[-1]).astype(np.float64)
                n, batch_mean = len(pixels), pixels.mean(axis=0)
                batch_m2 = ((pixels - batch_mean) ** 2).sum(axis=0)
                # Chan et al.'s pairwise update: exact to float64 however large the folder.
                delta, total = batch_mean - mean, count + n
                mean = mean + delta * n / total
                m2 = m2 + batch_m2 + delta**2 * count * n / total
                count = total
            variance = m2 / max(count, 1)
            variance[variance <= 0] = 1.0
            self._statistics = (mean.tolist(), variance.tolist())
        return self._statistics

    def display(self, images):
        """Streamed images as RGB pictures in [0, 1] (see
        :func:`~sm_pixel_ce.data.images.preview`)."""
        return preview(images, self.kind)


class ArraySource:
    """Images and masks held in memory (the generated scenes), streamed the same way.

    Args:
        images: float32 ``(N, S, S, C)``, model inputs as they are.
        masks: Integer ``(N, S, S)``.
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

    @property
    def kind(self):
        return ImageKind("float32", int(np.shape(self.image_array)[-1]))

    @property
    def channels(self):
        return self.kind.channels

    def normalization(self):
        """None: the arrays are model inputs already."""
        return None

    def display(self, images):
        return np.asarray(images)


def fingerprint(names):
    """A short hash of an ordered list of names: tells whether two runs read the same files."""
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return digest[:16]
