"""Deterministic synthetic scenes: background + 6 shape classes, for tests and the default demo.

Each scene is an RGB image with a few shapes (disc, square, triangle, ring, horizontal bar,
cross) painted over a textured background. Classes are imbalanced (background dominates, some
shapes are rarer and smaller), later shapes occlude earlier ones, and colours overlap between
classes with noise on top, so that shape, not colour alone, decides the class.
"""

import numpy as np

#: Class names of the default 7-class scenes; index = label value.
CLASS_NAMES = ("background", "disc", "square", "triangle", "ring", "bar", "cross")
NUM_CLASSES = len(CLASS_NAMES)
#: The colour of each class in a mask written as a picture (PASCAL VOC's first colours), so that
#: viewers show the classes apart; index = label value.
MASK_COLORS = (
    (0, 0, 0),
    (128, 0, 0),
    (0, 128, 0),
    (128, 128, 0),
    (0, 0, 128),
    (128, 0, 128),
    (0, 128, 128),
)

# How often each shape class is drawn (relative), giving rare and common classes.
_CLASS_FREQUENCY = np.array([0.0, 0.28, 0.24, 0.18, 0.14, 0.10, 0.06])
# Base colour of each class; close pairs (disc/ring, square/cross) make colour ambiguous.
_CLASS_COLOUR = np.array(
    [
        [0.45, 0.45, 0.45],
        [0.85, 0.30, 0.25],
        [0.25, 0.55, 0.85],
        [0.35, 0.80, 0.35],
        [0.80, 0.40, 0.30],
        [0.85, 0.80, 0.25],
        [0.30, 0.50, 0.80],
    ]
)


def _shape_mask(kind, yy, xx, cy, cx, r):
    dy, dx = yy - cy, xx - cx
    if kind == 1:  # disc
        return dy**2 + dx**2 <= r**2
    if kind == 2:  # square
        return (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85)
    if kind == 3:  # triangle pointing up
        return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    if kind == 4:  # ring
        d2 = dy**2 + dx**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    if kind == 5:  # horizontal bar
        return (np.abs(dy) <= max(1.5, r * 0.3)) & (np.abs(dx) <= r * 1.4)
    # cross
    w = max(1.5, r * 0.3)
    return ((np.abs(dy) <= w) & (np.abs(dx) <= r)) | ((np.abs(dx) <= w) & (np.abs(dy) <= r))


def make_scenes(count, size=64, seed=0, max_shapes=5, noise=0.08):
    """Generate ``count`` scenes with their integer masks.

    Args:
        count: Number of scenes.
        size: Side of the square images in pixels. Defaults to 64.
        seed: Seed; the same seed gives the same scenes. Defaults to 0.
        max_shapes: Most shapes per scene (at least 1). Defaults to 5.
        noise: Standard deviation of the Gaussian pixel noise. Defaults to 0.08.

    Returns:
        ``(images, masks)``: float32 ``(count, size, size, 3)`` in [0, 1] and uint8
        ``(count, size, size)`` with values in ``[0, NUM_CLASSES)``.

    Example:
        >>> images, masks = make_scenes(8, size=64, seed=1)
        >>> images.shape, masks.shape
        ((8, 64, 64, 3), (8, 64, 64))
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.empty((count, size, size, 3), np.float32)
    masks = np.zeros((count, size, size), np.uint8)
    probabilities = _CLASS_FREQUENCY / _CLASS_FREQUENCY.sum()
    for i in range(count):
        # Textured background: a smooth gradient plus low-frequency waves.
        phase = rng.uniform(0, 2 * np.pi, 2)
        texture = 0.08 * np.sin(xx / size * 6 + phase[0]) * np.cos(yy / size * 5 + phase[1])
        image = _CLASS_COLOUR[0] + texture[..., None] + rng.uniform(-0.1, 0.1, 3)
        mask = masks[i]
        for _ in range(rng.integers(1, max_shapes + 1)):
            kind = int(rng.choice(NUM_CLASSES, p=probabilities))
            r = rng.uniform(0.08, 0.2) * size * (0.7 if kind in (5, 6) else 1.0)
            cy, cx = rng.uniform(r * 0.5, size - r * 0.5, 2)
            region = _shape_mask(kind, yy, xx, cy, cx, r)
            colour = np.clip(_CLASS_COLOUR[kind] + rng.normal(0, 0.06, 3), 0, 1)
            image[region] = colour
            mask[region] = kind
        image += rng.normal(0, noise, image.shape)
        images[i] = np.clip(image, 0, 1)
    return images, masks
