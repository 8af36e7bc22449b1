"""Which mask belongs to which image: by file stem (``images/a.jpg`` + ``masks/a.png``), or by a
name pattern (``--mask-pattern "{stem}_mask.png"``: ``images/a.jpg`` + ``masks/a_mask.png``),
with the masks in ``DATA/masks`` or a folder of their own (``--masks DIR``)."""

import os

from .errors import DataError, some
from .images import IMAGE_SUFFIXES
from .masks import MASK_SUFFIXES

#: What a pattern's ``{stem}`` stands for.
STEM = "{stem}"


def list_files(folder, suffixes):
    """The files of ``folder`` whose suffix is one of ``suffixes`` (in any case), by file stem.

    Hidden files (``.name``) are skipped.

    Args:
        folder: A folder.
        suffixes: Lower-case suffixes with their dot, e.g. ``IMAGE_SUFFIXES``.

    Returns:
        A dict ``{stem: path}`` in stem order (empty when no file matches).

    Raises:
        DataError: Two files share a stem (``a.png`` and ``a.jpg``).

    Example:
        >>> list_files("my_data/images", IMAGE_SUFFIXES)
        {'a': 'my_data/images/a.jpg', 'b': 'my_data/images/b.png'}
    """
    files = {}
    for name in sorted(os.listdir(folder)):
        stem, suffix = os.path.splitext(name)
        if name.startswith(".") or suffix.lower() not in suffixes:
            continue
        if stem in files:
            raise DataError(
                f"{folder}: two files share the stem {stem!r} "
                f"({os.path.basename(files[stem])}, {name}); stems must be unique."
            )
        files[stem] = os.path.join(folder, name)
    return dict(sorted(files.items()))


def pair_by_stem(images, masks):
    """Pair two :func:`list_files` listings by file stem.

    Args:
        images: ``{stem: image_path}``.
        masks: ``{stem: mask_path}``.

    Returns:
        ``(pairs, images_alone, masks_alone)``: the ``(image_path, mask_path)`` list in stem
        order, and the sorted stems that have no partner on each side.

    Example:
        >>> pair_by_stem({"a": "i/a.jpg", "b": "i/b.jpg"}, {"a": "m/a.png"})
        ([('i/a.jpg', 'm/a.png')], ['b'], [])
    """
    pairs = [(images[s], masks[s]) for s in sorted(images) if s in masks]
    return pairs, sorted(set(images) - set(masks)), sorted(set(masks) - set(images))


class MaskPattern:
    """A mask's file name made from its image's stem: ``"{stem}_mask.png"``.

    Args:
        pattern: A file name holding ``{stem}`` once and ending with a mask suffix
            (:data:`~sm_pixel_ce.data.masks.MASK_SUFFIXES`).

    Raises:
        ValueError: Any other pattern (the message names ``--mask-pattern``).

    Example:
        >>> pattern = MaskPattern("{stem}_mask.png")
        >>> pattern.name("img_001"), pattern.stem_of("img_001_mask.png")
        ('img_001_mask.png', 'img_001')
    """

    def __init__(self, pattern):
        self.pattern = pattern
        text = pattern if isinstance(pattern, str) else ""
        before, _, after = text.partition(STEM)
        rest = before + after
        suffix = os.path.splitext("x" + after)[1].lower()
        if (
            text.count(STEM) != 1
            or "{" in rest
            or "}" in rest
            or "/" in text
            or os.sep in text
            or suffix not in MASK_SUFFIXES
        ):
            raise ValueError(
                "--mask-pattern must be a file name with {stem} once (the image's file name "
                f"without its suffix) and a suffix of {'/'.join(MASK_SUFFIXES)}, e.g. "
                f'"{{stem}}_mask.png"; received {pattern!r}.'
            )
        self.before, self.after = before, after

    def name(self, stem):
        """The mask file name of the image ``stem``."""
        return f"{self.before}{stem}{self.after}"

    def stem_of(self, name):
        """The image stem whose mask is the file ``name``, or None when it does not follow the
        pattern."""
        if name.startswith(".") or len(name) <= len(self.before) + len(self.after):
            return None
        if name.startswith(self.before) and name.endswith(self.after):
            return name[len(self.before) : len(name) - len(self.after)]
        return None

    def __str__(self):
        return self.pattern


def _folder(path, what):
    if not os.path.isdir(path):
        raise DataError(what + " it does not exist.")
    return path


def find_pairs(folder, masks=None, pattern=None):
    """Pair ``folder/images/*`` with their masks.

    Args:
        folder: The data folder.
        masks: The masks' folder; None for ``folder/masks``. Defaults to None.
        pattern: A :class:`MaskPattern` (or its text), or None to pair by file stem.
            Defaults to None.

    Returns:
        ``(pairs, images_alone, masks_alone)``: ``(image_path, mask_path)`` sorted by image
        stem, and the paths of the files without a partner.

    Raises:
        DataError: A folder is missing or empty, two files share a stem, or stem pairing
            would pair the images folder with itself.
    """
    images_dir = os.path.join(folder, "images")
    _folder(
        images_dir,
        f"{folder}: expected a folder {images_dir}/ (layout: DIR/images/*, DIR/masks/*);",
    )
    if masks is None:
        masks_dir = os.path.join(folder, "masks")
        _folder(
            masks_dir,
            f"{folder}: expected a folder {masks_dir}/ (layout: DIR/images/*, DIR/masks/*, or "
            "--masks DIR);",
        )
    else:
        masks_dir = _folder(os.fspath(masks), f"--masks {masks}: expected a folder of masks;")
    if pattern is not None and not isinstance(pattern, MaskPattern):
        pattern = MaskPattern(pattern)
    same = os.path.samefile(images_dir, masks_dir)
    images = list_files(images_dir, IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"{images_dir}: no {'/'.join(IMAGE_SUFFIXES)} files found.")
    if pattern is None:
        if same:
            raise DataError(
                f"--masks {masks} is the images folder: pairing by file stem would pair every "
                'image with itself; name the masks with --mask-pattern, e.g. "{stem}_mask.png".'
            )
        mask_files = list_files(masks_dir, MASK_SUFFIXES)
        if not mask_files:
            raise DataError(f"{masks_dir}: no {'/'.join(MASK_SUFFIXES)} files found.")
    else:
        mask_files = {}
        for name in sorted(os.listdir(masks_dir)):
            stem = pattern.stem_of(name)
            if stem is not None:
                mask_files[stem] = os.path.join(masks_dir, name)
        if same:
            masks_by_path = set(mask_files.values())
            images = {s: p for s, p in images.items() if p not in masks_by_path}
        if not mask_files:
            raise DataError(
                f"{masks_dir}: no file matches --mask-pattern {pattern} (e.g. "
                f"{pattern.name(next(iter(images), 'a'))})."
            )
    if not images:
        raise DataError(f"{images_dir}: no {'/'.join(IMAGE_SUFFIXES)} files found.")
    pairs, lonely_images, lonely_masks = pair_by_stem(images, mask_files)
    return pairs, [images[s] for s in lonely_images], [mask_files[s] for s in lonely_masks]


def unpaired(folder, images_alone, masks_alone, pattern=None):
    """One line for the unpaired files of :func:`find_pairs`: how many, the first few, and
    what to do."""
    parts = []
    if images_alone:
        parts.append(
            f"{len(images_alone)} image(s) without a mask: "
            f"{some(os.path.basename(p) for p in images_alone)}"
        )
    if masks_alone:
        parts.append(
            f"{len(masks_alone)} mask(s) without an image: "
            f"{some(os.path.basename(p) for p in masks_alone)}"
        )
    if pattern is not None and images_alone:
        stem = os.path.splitext(os.path.basename(images_alone[0]))[0]
        name = MaskPattern(str(pattern)).name(stem)
        rule = f"with --mask-pattern {pattern}, the mask of {stem} is {name}"
    else:
        rule = "pair images and masks by file stem, or name the masks with --mask-pattern"
    return (
        f"{folder}: unpaired files ({'; '.join(parts)}); {rule}; or pass --skip-bad to skip them."
    )
