"""Your own data: ``DIR/images/*`` and ``DIR/masks/*`` paired by file stem, loaded with tf.data.

Images are PNG or JPEG (RGB, grey or RGBA; decoded to RGB in [0, 1] and resized bilinearly).
Masks are 8-bit PNGs whose pixel values are class indices: greyscale (``L``) or palette (``P``),
whose *indices* are the classes (as in PASCAL VOC, where 255 marks void borders). Masks are
resized with nearest neighbour only, so no value between two classes is ever invented.

:func:`list_files`, :func:`pair_by_stem`, :func:`decode_image`, :func:`read_mask` and
:func:`resize_mask` are the one place files are listed, paired and decoded: ``export
--calibration`` reads its folder with them too.
"""

import os
import re

import numpy as np
import tensorflow as tf

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MASK_SUFFIXES = (".png",)
# PIL modes whose pixel values are the class indices themselves.
_INDEX_MODES = ("L", "P")


class DataError(ValueError):
    """The folder cannot be used as given; the message says what was expected and received."""


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


def pair_files(folder):
    """Pair ``folder/images/<stem>.*`` with ``folder/masks/<stem>.png``.

    Args:
        folder: The data folder.

    Returns:
        A list of ``(image_path, mask_path)`` sorted by stem.

    Raises:
        DataError: A folder is missing or empty, a stem has no partner or two files.

    Example:
        >>> pairs = pair_files("my_data")   # my_data/images/a.jpg + my_data/masks/a.png, ...
    """
    found = {}
    for sub, suffixes in (("images", IMAGE_SUFFIXES), ("masks", MASK_SUFFIXES)):
        path = os.path.join(folder, sub)
        if not os.path.isdir(path):
            raise DataError(
                f"{folder}: expected a folder {path}/ (layout: DIR/images/*, DIR/masks/*); "
                "it does not exist."
            )
        files = list_files(path, suffixes)
        if not files:
            raise DataError(f"{path}: no {'/'.join(suffixes)} files found.")
        found[sub] = files
    images, masks = found["images"], found["masks"]
    pairs, lonely_images, lonely_masks = pair_by_stem(images, masks)
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(f"images without a mask: {_names(images, lonely_images)}")
        if lonely_masks:
            parts.append(f"masks without an image: {_names(masks, lonely_masks)}")
        raise DataError(
            f"{folder}: unpaired files ({'; '.join(parts)}); pair images and masks by file stem."
        )
    return pairs


def _names(files, stems):
    return _some(os.path.basename(files[s]) for s in stems)


def _some(names, limit=3):
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def read_mask(path):
    """Class indices of an 8-bit greyscale or palette PNG, as uint8 ``(H, W)``.

    Raises:
        DataError: The file is not a single-channel 8-bit or palette image.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in _INDEX_MODES:
                raise DataError(
                    f"{path}: masks must be 8-bit greyscale (L) or palette (P) PNGs of class "
                    "indices. "
                    f"Received mode {mode}."
                )
            return np.asarray(image, dtype=np.uint8)
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError) as error:
        # PIL reports damaged PNGs as OSError, SyntaxError ("broken PNG file") or ValueError.
        raise DataError(f"{path}: cannot read the mask ({_first_line(error)}).") from None


def check_mask(path, mask, classes, ignore_index=None):
    """Require every value of ``mask`` to be a class in ``[0, classes)`` or ``ignore_index``.

    Raises:
        DataError: naming the file, the bad values and what was expected.
    """
    values = np.unique(mask)
    bad = values[(values >= classes) & (values != (-1 if ignore_index is None else ignore_index))]
    if bad.size:
        expected = f"values in [0, {classes - 1}]" + (
            f" or the ignore value {ignore_index}"
            if ignore_index is not None
            else " (no --ignore-index set)"
        )
        raise DataError(
            f"{path}: mask value(s) {bad.tolist()[:5]} out of range; "
            f"expected {expected} for --classes {classes}."
        )


def _first_line(error):
    text = str(getattr(error, "message", error))
    # TensorFlow wraps its messages: "{{function_node ...}} what [Op:DecodeImage] name: ".
    text = re.sub(r"\{\{.*?\}\}", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*", "", text, flags=re.S)
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def check_pair(image_path, mask_path, classes, ignore_index=None):
    """Open one pair fully: the image decodes, the mask is an index PNG in range, sizes agree.

    Args:
        image_path, mask_path: The pair.
        classes: Number of classes.
        ignore_index: Mask value not counted, or None. Defaults to None.

    Returns:
        None when the pair is usable, else ``(path, message, skippable)``: the file at fault, one
        line naming it and what is wrong, and whether ``--skip-bad`` may drop the pair (a damaged
        file or mismatched sizes; not a mask in the wrong mode or with values out of range,
        which say the options do not fit the data).
    """
    from PIL import Image

    try:
        with Image.open(image_path) as image:
            image.load()  # decodes every byte: a truncated file fails here, not mid-training
            image_size = image.size
    except (OSError, ValueError, SyntaxError) as error:
        return image_path, f"{image_path}: cannot decode the image ({_first_line(error)}).", True
    try:
        mask = read_mask(mask_path)
    except DataError as error:
        return mask_path, str(error), "Received mode" not in str(error)
    if mask.shape[::-1] != image_size:
        return (
            mask_path,
            f"{mask_path}: the mask is {mask.shape[1]}x{mask.shape[0]} px but its image "
            f"{image_path} is {image_size[0]}x{image_size[1]} px; a mask must have its image's "
            "size.",
            True,
        )
    try:
        check_mask(mask_path, mask, classes, ignore_index)
    except DataError as error:
        return mask_path, str(error), False
    return None


def check_pairs(pairs, classes, ignore_index=None, skip_bad=False, workers=None):
    """Open every pair once before training (:func:`check_pair`), a few at a time.

    Args:
        pairs: ``(image_path, mask_path)`` list from :func:`pair_files`.
        classes: Number of classes.
        ignore_index: Mask value not counted, or None. Defaults to None.
        skip_bad: Drop damaged pairs instead of stopping. Defaults to False.
        workers: Threads (PIL decodes outside the GIL); None for the CPU count. Defaults to None.

    Returns:
        ``(good_pairs, skipped)``: the usable pairs in order, and ``[{"image", "mask", "file",
        "reason"}]`` for each pair dropped under ``skip_bad``.

    Raises:
        DataError: The first bad pair in folder order (one line naming the file), when not
            ``skip_bad`` or when the fault is not one ``skip_bad`` may drop.

    Example:
        >>> good, skipped = check_pairs(pair_files("my_data"), classes=21, ignore_index=255)
    """
    from concurrent.futures import ThreadPoolExecutor

    good, skipped = [], []
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        checks = pool.map(lambda pair: check_pair(*pair, classes, ignore_index), pairs)
        try:
            for (image_path, mask_path), problem in zip(pairs, checks):
                if problem is None:
                    good.append((image_path, mask_path))
                    continue
                path, message, skippable = problem
                if not (skip_bad and skippable):
                    raise DataError(message)
                skipped.append(
                    {"image": image_path, "mask": mask_path, "file": path, "reason": message}
                )
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return good, skipped


def resize_mask(mask, height, width):
    """Class indices ``(H, W)`` resized to ``(height, width)`` with nearest neighbour, so that no
    value between two classes is invented. Eager, or inside ``tf.data``.

    Args:
        mask: ``(H, W)`` integer array or tensor, e.g. from :func:`read_mask`.
        height: Output height in pixels.
        width: Output width in pixels.

    Returns:
        A ``(height, width)`` tensor of ``mask``'s dtype.

    Example:
        >>> resize_mask(read_mask("my_data/masks/a.png"), 128, 128).numpy()
    """
    mask = tf.image.resize(
        tf.convert_to_tensor(mask)[..., None], (height, width), method="nearest"
    )[..., 0]
    mask.set_shape((height, width))
    return mask


def _decode_rgb(path):
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def decode_image(path, height, width):
    """An image file as RGB in [0, 1], resized to ``(height, width)`` bilinearly with
    antialiasing. Eager, or inside ``tf.data`` (``path`` a string tensor).

    PNG or JPEG, greyscale, RGB or RGBA, decoded by TensorFlow (grey and RGBA become RGB).

    Args:
        path: The image file.
        height: Output height in pixels.
        width: Output width in pixels.

    Returns:
        A float32 ``(height, width, 3)`` tensor.

    Raises:
        tensorflow.errors.InvalidArgumentError, tensorflow.errors.NotFoundError: The file cannot
            be decoded or read (when the tensor is computed).

    Example:
        >>> decode_image("my_data/images/a.jpg", 128, 128).shape
        TensorShape([128, 128, 3])
    """
    image = tf.image.resize(
        tf.image.convert_image_dtype(_decode_rgb(path), tf.float32), (height, width), antialias=True
    )
    image.set_shape((height, width, 3))
    return tf.clip_by_value(image, 0.0, 1.0)


def _read_mask_for_dataset(path):
    return read_mask(path.decode() if isinstance(path, bytes) else str(path))


def _load_mask(mask_path, size):
    # Palette PNGs must keep their indices: TensorFlow's decoder expands palettes to colours.
    mask = tf.numpy_function(_read_mask_for_dataset, [mask_path], tf.uint8)
    mask.set_shape((None, None))
    return resize_mask(mask, size, size)


def folder_masks(pairs, size):
    """The masks of ``pairs`` alone, as :func:`folder_dataset` gives them (no image decoded)."""
    paths = tf.data.Dataset.from_tensor_slices(tf.constant([m for _, m in pairs]))
    return paths.map(lambda path: _load_mask(path, size), num_parallel_calls=tf.data.AUTOTUNE)


def _load_pair(size):
    def load(image_path, mask_path):
        return decode_image(image_path, size, size), _load_mask(mask_path, size)

    return load


def folder_dataset(pairs, size, shuffle_seed=None):
    """A ``tf.data.Dataset`` of ``(image, mask)``: float32 ``(size, size, 3)``, uint8
    ``(size, size)``, read from disk as it is consumed.

    Args:
        pairs: ``(image_path, mask_path)`` list from :func:`pair_files`.
        size: Output side in pixels.
        shuffle_seed: Shuffle the file names (before decoding, afresh every pass) with this
            seed, or None to keep the order of ``pairs``. Defaults to None.

    Returns:
        The dataset.
    """
    paths = tf.data.Dataset.from_tensor_slices(
        (tf.constant([p for p, _ in pairs]), tf.constant([m for _, m in pairs]))
    )
    if shuffle_seed is not None:
        paths = paths.shuffle(len(pairs), seed=shuffle_seed, reshuffle_each_iteration=True)
    return paths.map(_load_pair(size), num_parallel_calls=tf.data.AUTOTUNE)


def locate_bad_file(pairs, error):
    """The pair file behind a ``tf.data`` error met while streaming ``pairs``, as a
    :class:`DataError`, or None when no file is at fault.

    A mask error already names its file; an image TensorFlow cannot decode is found by decoding
    each image again (only on this error path).
    """
    message = str(getattr(error, "message", error))
    for image_path, mask_path in pairs:
        for path in (mask_path, image_path):
            if path in message:
                line = next((x for x in message.splitlines() if path in x), path)
                line = line.split("DataError: ", 1)[-1].strip()
                return DataError(line if line.startswith(path) else f"{path}: {line}")
    for image_path, _ in pairs:
        try:
            _decode_rgb(image_path)
        except (tf.errors.OpError, ValueError) as bad:
            return DataError(f"{image_path}: cannot decode the image ({_first_line(bad)}).")
    return None


def load_folder(folder, classes, size=64, ignore_index=None):
    """Load and check a small data folder into memory (``compare`` streams instead: see
    :class:`~sm_pixel_ce.data.sources.FolderSource`).

    Args:
        folder: ``DIR`` with ``images/`` and ``masks/``.
        classes: Number of classes; mask values must be in ``[0, classes)`` or ``ignore_index``.
        size: Side the images and masks are resized to. Defaults to 64.
        ignore_index: Mask value that marks pixels not to count (e.g. 255), or None.
            Defaults to None.

    Returns:
        ``(images, masks)``: float32 ``(N, size, size, 3)`` in [0, 1], uint8 ``(N, size, size)``.

    Raises:
        DataError: Missing folders, unpaired files, unreadable files, mismatched sizes,
            out-of-range mask values; the message names the file.

    Example:
        >>> images, masks = load_folder("my_data", classes=7, size=128, ignore_index=255)
    """
    pairs, _ = check_pairs(pair_files(folder), classes, ignore_index)
    images, masks = [], []
    try:
        for image, mask in folder_dataset(pairs, size).batch(32).as_numpy_iterator():
            images.append(image)
            masks.append(mask)
    except tf.errors.OpError as error:
        raise (locate_bad_file(pairs, error) or error) from None
    return np.concatenate(images), np.concatenate(masks)
