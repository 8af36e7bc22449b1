"""Images and masks written as a data folder that every job reads: ``DIR/images/*.png``,
``DIR/masks/*.png`` and ``DIR/colors.json``.

The masks are palette PNGs: each pixel holds its class index (read as is, with no option), and
the palette gives each class a colour, so that viewers show the classes apart. ``colors.json``
names the classes and their colours in the table ``--mask-colors`` reads
(:meth:`~sm_pixel_ce.data.masks.ColorTable.from_json`), so that
``--mask-colors DIR/colors.json`` reads the same classes with their names, and a model trained
so carries the names (its data contract) to ``evaluate``, ``predict`` and ``export``.
"""

import json
import os

import numpy as np

from .options import TRAINING_SIZE
from .scenes import CLASS_NAMES, MASK_COLORS, make_scenes

#: The colour table's file name in a written folder.
COLORS_FILE = "colors.json"
#: Scenes :func:`write_scenes` writes when not told: as many as ``compare`` generates.
SCENES_COUNT = 160


def _empty_or_new(folder):
    """Refuse a folder whose ``images/`` or ``masks/`` already holds files: the new pairs would
    be read together with the old ones."""
    for sub in ("images", "masks"):
        path = os.path.join(folder, sub)
        if os.path.isdir(path) and os.listdir(path):
            raise ValueError(
                f"{path} already holds files; a data folder is read whole, so the new pairs "
                "would mix with them: choose a new or empty folder, or delete that one. "
                f"Received: folder={os.fspath(folder)!r}"
            )


def write_folder(folder, images, masks, class_names, colors):
    """Write images and their masks as a data folder: ``images/`` (8-bit RGB PNGs),
    ``masks/`` (palette PNGs of class indices) and ``colors.json``.

    Args:
        folder: The folder to write (made if missing; its ``images/`` and ``masks/`` must be
            empty or missing).
        images: float ``(N, H, W, 3)`` in [0, 1]; written as ``round(255 * x)``.
        masks: Integer ``(N, H, W)`` class indices in ``[0, len(class_names))``.
        class_names: A name per class.
        colors: An ``(R, G, B)`` per class, for the palette and ``colors.json``.

    Returns:
        ``(image_paths, mask_paths, colors_path)``, the pairs in order.

    Raises:
        ValueError: Shapes that do not pair, a mask value without a class, names and colours
            of different lengths, or a folder that already holds images or masks.

    Example:
        >>> images, masks = make_scenes(4, size=64)
        >>> write_folder("scenes", images, masks, CLASS_NAMES, MASK_COLORS)[2]
        'scenes/colors.json'
    """
    from PIL import Image

    images, masks = np.asarray(images), np.asarray(masks)
    classes = len(class_names)
    if len(colors) != classes:
        raise ValueError(
            f"write_folder needs a colour per class: {classes} class names but {len(colors)} "
            f"colours. Received: class_names={list(class_names)}, colors={list(colors)}"
        )
    if images.ndim != 4 or images.shape[-1] != 3 or masks.shape != images.shape[:3]:
        raise ValueError(
            "write_folder takes images (N, H, W, 3) and masks (N, H, W) of the same N, H, W. "
            f"Received: images {images.shape}, masks {masks.shape}"
        )
    if masks.size and (masks.min() < 0 or masks.max() >= classes):
        raise ValueError(
            f"mask values must be classes in [0, {classes - 1}]. "
            f"Received: values from {masks.min()} to {masks.max()}"
        )
    _empty_or_new(folder)
    for sub in ("images", "masks"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    palette = [channel for color in colors for channel in color]
    digits = max(4, len(str(len(images) - 1)))
    image_paths, mask_paths = [], []
    for i, (image, mask) in enumerate(zip(images, masks)):
        name = f"scene_{i:0{digits}d}.png"
        image_paths.append(os.path.join(folder, "images", name))
        mask_paths.append(os.path.join(folder, "masks", name))
        pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(image_paths[-1])
        picture = Image.fromarray(mask.astype(np.uint8))
        picture.putpalette(palette)  # an "L" image with a palette becomes "P"
        picture.save(mask_paths[-1])
    colors_path = os.path.join(folder, COLORS_FILE)
    table = [
        {"class": c, "name": str(name), "color": [int(v) for v in color]}
        for c, (name, color) in enumerate(zip(class_names, colors))
    ]
    with open(colors_path, "w") as handle:  # one class a line
        handle.write("[\n" + ",\n".join(f"  {json.dumps(row)}" for row in table) + "\n]\n")
    return image_paths, mask_paths, colors_path


def write_scenes(folder, count=SCENES_COUNT, size=TRAINING_SIZE, seed=0):
    """Write the generated scenes (:func:`~sm_pixel_ce.data.scenes.make_scenes`) as a data
    folder (:func:`write_folder`), the 7 classes named and coloured.

    The defaults are ``compare``'s without ``--data`` (``--images 160 --size 64 --seed 0``), so
    that ``compare --data DIR`` trains on the scenes ``compare`` alone generates (quantized to
    8 bits).

    Args:
        folder: The folder to write.
        count: Number of scenes (>= 1). Defaults to 160.
        size: Side of the square scenes in pixels (>= 8). Defaults to 64.
        seed: Seed of :func:`make_scenes`. Defaults to 0.

    Returns:
        A dict: ``folder``, ``images`` (the count), ``size``, ``seed``, ``colors`` (the path of
        ``colors.json``) and ``class_names``.

    Raises:
        ValueError: A count or size out of range, or a folder that already holds images or
            masks.

    Example:
        >>> write_scenes("scenes", count=32)["colors"]
        'scenes/colors.json'
    """
    for name, value, least in (("count", count, 1), ("size", size, 8)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(
                f"--{name} must be an integer >= {least}, e.g. "
                f"{'160' if name == 'count' else '64'}. Received: {name}={value!r}"
            )
    _empty_or_new(folder)
    images, masks = make_scenes(int(count), size=int(size), seed=seed)
    colors_path = write_folder(folder, images, masks, CLASS_NAMES, MASK_COLORS)[2]
    return {
        "folder": os.fspath(folder),
        "images": int(count),
        "size": int(size),
        "seed": seed,
        "colors": colors_path,
        "class_names": list(CLASS_NAMES),
    }
