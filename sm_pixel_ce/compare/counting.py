"""The third step of ``compare``: count the training masks' classes once, in one streamed pass,
for the losses weighted by class and the report's rare classes."""

from ..class_weights import count_class_pixels


def count(train, options, log):
    """The per-class pixel counts of the training masks, shared by every run.

    Args:
        train: The training source of a :class:`~sm_pixel_ce.compare.splitting.Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions` (``classes``,
            ``ignore_index``).
        log: Function given one progress line.

    Returns:
        A :class:`~sm_pixel_ce.class_weights.ClassPixels`.

    Raises:
        ValueError: A mask value out of ``[0, classes)`` that is not ``ignore_index``.

    Example:
        >>> counts = count(held_out.train, CompareOptions(), log=print)
        >>> counts.pixels.shape
        (7,)
    """
    log("  counting the training masks' classes (one pass)")
    masks = train.masks().batch(64)
    return count_class_pixels(masks, options.classes, options.ignore_index)
