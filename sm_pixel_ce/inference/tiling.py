"""Images of any size through a model: :func:`predict_image`, whole, resized or in overlapping
tiles blended with a window that falls off towards the tile's edges.

The tile grid is MMSegmentation's ``slide_inference``: along a side of ``length`` pixels,
``max(length - tile + stride - 1, 0) // stride + 1`` tiles, the last one moved back to end at
the image's edge (:func:`tile_starts`). Overlapping tiles are blended as nnU-Net does, with a
separable Gaussian of sigma = side / 8 (:func:`blend_window`): a pixel near a tile's edge, where
the network sees little context, counts less than one near another tile's centre.

Memory: one float32 ``(H, W, K)`` sum and one float32 ``(H, W)`` weight, and ``batch_size`` tiles
at a time; a 4000 x 3000 RGB image predicts within 2 GB (see ``sm-pixel-ce bench --inference``).

Test-time augmentation is MMSegmentation's aug test (``TestTimeAug`` with ``Resize(scale_factor=r,
keep_ratio=True)`` and ``RandomFlip``, merged by ``SegTTAModel``): each scale of ``tta_scales``
resizes the model's input by r (bilinear, antialiased, as images are read for training), each
flip of ``tta`` is predicted and flipped back, the probabilities are resized back to the image's
size the same way, and the probabilities (not the logits) are averaged. The scales stream: one
float32 ``(H, W, K)`` running sum at the image's own size, whatever their number (examples/tta.md
gives the choices against MMSegmentation's and the peak memory measured).
"""

import functools
import math
import numbers

import numpy as np
import tensorflow as tf

from ..data.options import option
from .predictor import Predictor, load_predictor

#: A flexible model predicts an image whose longer side is at most this many pixels whole.
WHOLE_IMAGE_LIMIT = 1024
#: ... and a larger image in tiles of this side.
DEFAULT_TILE = 512
#: Test-time augmentation -> the flips averaged (axes of an ``(N, H, W, C)`` batch).
TTA_FLIPS = {
    "none": ((),),
    "hflip": ((), (2,)),
    "hvflip": ((), (2,), (1,), (1, 2)),
}
#: What ``--tta-scales`` means when not given: the image at its own scale only.
NO_SCALES = (1.0,)
#: Values :func:`_resize` makes per TensorFlow call: a large image's probabilities are resized a
#: few channels at a time (64 MiB of float32 out), so that TensorFlow's copies stay that small.
RESIZE_BLOCK = 2**24
#: The least weight of :func:`blend_window`, so that every pixel of a tile counts a little.
WINDOW_FLOOR = 1e-4


def tile_starts(length, tile, stride):
    """Where the tiles along one side start, as MMSegmentation's ``slide_inference`` places them.

    ``grids = max(length - tile + stride - 1, 0) // stride + 1`` tiles, tile ``i`` starting at
    ``min(i * stride, length - tile)`` (and at 0 when the side is shorter than a tile).

    Args:
        length: The side in pixels.
        tile: The tile's side in pixels.
        stride: Pixels between the starts of two tiles.

    Returns:
        A list of start offsets, ascending.

    Raises:
        ValueError: A value that is not a positive integer.

    Example:
        >>> tile_starts(1000, 512, 384)
        [0, 384, 488]
        >>> tile_starts(1024, 512, 512)
        [0, 512]
    """
    for name, value in (("length", length), ("tile", tile), ("stride", stride)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
    grids = max(length - tile + stride - 1, 0) // stride + 1
    return [max(min(i * stride, length - tile), 0) for i in range(grids)]


def _gaussian(side):
    centre = (side - 1) / 2
    sigma = side / 8
    x = np.arange(side, dtype=np.float64)
    return np.exp(-((x - centre) ** 2) / (2 * sigma**2))


def blend_window(height, width):
    """The weight of each pixel of a tile when overlapping tiles are blended.

    ``w[y, x] = g_h(y) * g_w(x)``, ``g_s`` a Gaussian of sigma = ``s / 8`` centred on the side,
    scaled to 1 at the centre and floored at :data:`WINDOW_FLOOR` (as nnU-Net's importance map),
    so that every pixel has some weight.

    Args:
        height: Tile height in pixels.
        width: Tile width in pixels.

    Returns:
        float32 ``(height, width)``, in ``[WINDOW_FLOOR, 1]``.

    Example:
        >>> window = blend_window(64, 64)
        >>> float(window.max()), window[0, 0] < window[32, 32]
        (1.0, True)
    """
    window = np.outer(_gaussian(height), _gaussian(width))
    window /= window.max()
    return np.maximum(window, WINDOW_FLOOR).astype(np.float32)


def check_overlap(overlap):
    """Raise a ``ValueError`` unless ``overlap`` is a number in ``[0, 1)``."""
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0 <= overlap < 1:
        raise ValueError(
            "overlap is the fraction of a tile shared with the next, in [0, 1). "
            f"Received: overlap={overlap!r}"
        )


def check_tta(tta):
    """Raise a ``ValueError`` unless ``tta`` is a key of :data:`TTA_FLIPS`."""
    if tta not in TTA_FLIPS:
        raise ValueError(f"tta must be one of {', '.join(TTA_FLIPS)}. Received: tta={tta!r}")


def parse_scales(tta_scales):
    """``--tta-scales``: the scales of multi-scale test-time augmentation, as floats.

    Args:
        tta_scales: ``"0.75,1,1.25"``, a sequence of numbers, one number, or None.

    Returns:
        A tuple of positive finite floats, in the order given; :data:`NO_SCALES` for None.

    Raises:
        ValueError: An empty list, or an item that is not a positive finite number (naming
            ``--tta-scales`` and what it received).

    Example:
        >>> parse_scales("0.75,1,1.25")
        (0.75, 1.0, 1.25)
    """
    if tta_scales is None:
        return NO_SCALES
    if isinstance(tta_scales, str):
        items = tta_scales.split(",")
    elif isinstance(tta_scales, numbers.Real):
        items = [tta_scales]
    else:
        items = list(tta_scales)
    scales = []
    for item in items:
        try:
            scale = float(item.strip() if isinstance(item, str) else item)
        except (TypeError, ValueError):
            scale = None
        if isinstance(item, bool) or scale is None or not math.isfinite(scale) or scale <= 0:
            scales = []
            break
        scales.append(scale)
    if not scales:
        raise ValueError(
            "--tta-scales takes positive numbers, comma-separated, each the factor the image is "
            "resized by before it is predicted, e.g. 0.75,1,1.25 (MMSegmentation's aug test "
            f"uses 0.5 to 1.75). Received: --tta-scales {tta_scales!r}"
        )
    return tuple(scales)


def scales_text(tta_scales):
    """``--tta-scales`` as one canonical string (``"0.75,1,1.25"``), or None for None."""
    if tta_scales is None:
        return None
    return ",".join(_number(scale) for scale in parse_scales(tta_scales))


def _number(value):
    """``1.0`` -> ``"1"``, ``0.75`` -> ``"0.75"``: the shortest text of the same float."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def tta_option():
    """The ``tta`` field of a job's options (``--tta``): one help text for ``evaluate`` and
    ``predict``."""
    return option(
        "none",
        "test-time augmentation: none, hflip (+ horizontal flip, MMSegmentation's aug test) or "
        "hvflip (+ horizontal, vertical and both flips), the probabilities averaged "
        "(default: %(default)s)",
        str,
        choices=tuple(TTA_FLIPS),
    )


def tta_scales_option():
    """The ``tta_scales`` field of a job's options (``--tta-scales``)."""
    return option(
        None,
        "multi-scale test-time augmentation, as MMSegmentation's aug test: predict the image "
        "resized by each factor (bilinear; with each --tta flip), resize the probabilities "
        "back and average them, e.g. 0.75,1,1.25 (default: the image's own scale only)",
        str,
        metavar="S,S,...",
    )


def check_positive(name, value):
    """Raise a ``ValueError`` unless ``value`` is None or an integer >= 1; the message spells
    ``name`` as its flag (``batch_size``: ``--batch-size``)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        flag = "--" + name.replace("_", "-")
        raise ValueError(f"{flag} must be an integer >= 1. Received: {name}={value!r}")


def _round_up(value, multiple):
    return -(-int(value) // multiple) * multiple


def _pad(image, height, width):
    """``image`` reflected at its bottom and right edges up to ``height`` x ``width``."""
    rows, columns = height - image.shape[0], width - image.shape[1]
    if rows <= 0 and columns <= 0:
        return image
    return np.pad(image, ((0, max(rows, 0)), (0, max(columns, 0)), (0, 0)), mode="reflect")


def predict_batch(predictor, images, tta="none"):
    """Probabilities of a batch, averaged over the flips of ``tta`` (each flipped back).

    Args:
        predictor: A :class:`~sm_pixel_ce.inference.predictor.Predictor`.
        images: float32 ``(N, H, W, C)``.
        tta: ``"none"``, ``"hflip"`` or ``"hvflip"``. Defaults to ``"none"``.

    Returns:
        float32 ``(N, H, W, K)``.
    """
    flips = TTA_FLIPS[tta]
    total = None
    for axes in flips:
        batch = np.flip(images, axes) if axes else images
        probabilities = predictor(batch)
        if axes:
            probabilities = np.flip(probabilities, axes)
        total = probabilities if total is None else total + probabilities
    return total if len(flips) == 1 else total / np.float32(len(flips))


def _resize(array, height, width, add_to=None):
    """``(H, W, C)`` or ``(N, H, W, C)`` resized bilinearly with antialiasing (the one resize of
    images and probabilities, as :func:`sm_pixel_ce.data.images.to_model_input`'s), a block
    of channels at a time (at most :data:`RESIZE_BLOCK` values out) so that TensorFlow's copies
    of a large image stay small; added into ``add_to`` when given."""
    channels = array.shape[-1]
    step = max(1, RESIZE_BLOCK // (height * width * int(np.prod(array.shape[:-3]))))
    if add_to is None and step >= channels:
        return tf.image.resize(array, (height, width), antialias=True).numpy()
    out = np.empty(array.shape[:-3] + (height, width, channels), np.float32)
    out = out if add_to is None else add_to
    for first in range(0, channels, step):
        block = tf.image.resize(array[..., first : first + step], (height, width), antialias=True)
        if add_to is None:
            out[..., first : first + step] = block
        else:
            out[..., first : first + step] += block
    return out


def _input_at(image, height, width):
    """A model input (``(H, W, C)`` or a batch) at ``height`` x ``width``: itself at its size,
    else :func:`_resize`, kept in [0, 1] when it was (as
    :func:`sm_pixel_ce.data.images.to_model_input` keeps resized 8- and 16-bit images)."""
    if (height, width) == image.shape[-3:-1]:
        return image
    resized = _resize(image, height, width)
    if image.size and image.min() >= 0 and image.max() <= 1:
        resized = np.clip(resized, 0.0, 1.0, out=resized)
    return resized


def _whole(predictor, image, tta):
    """Predict ``image`` in one call, padded up to the model's multiple and cropped back."""
    height, width = image.shape[:2]
    multiple = predictor.multiple
    padded = _pad(image, _round_up(height, multiple), _round_up(width, multiple))
    probabilities = predict_batch(predictor, padded[None], tta)[0]
    return np.ascontiguousarray(probabilities[:height, :width])


def _scaled_side(side, scale):
    """A side resized by ``scale``, as MMSegmentation's ``Resize(scale_factor=...)`` rounds it."""
    return max(1, int(side * scale + 0.5))


def _scaled_size(size, scale, multiple=1):
    """``(h, w)`` resized by ``scale`` and rounded up to ``multiple``; itself at scale 1."""
    if scale == 1:
        return tuple(size)
    return tuple(_round_up(_scaled_side(side, scale), multiple) for side in size)


def _mean_over(scales, size, predict_at):
    """The mean over ``scales`` of ``predict_at(scale)`` (probabilities at any size) resized to
    ``size``: one running sum, into which each scale's probabilities are resized back and added
    as they come, never every scale's at once."""
    total = None
    for scale in scales:
        probabilities = predict_at(scale)
        if probabilities.shape[-3:-1] != tuple(size):
            if total is None:
                total = _resize(probabilities, *size)
            else:
                _resize(probabilities, *size, add_to=total)
        elif total is None:
            total = probabilities if len(scales) == 1 else np.array(probabilities, np.float32)
        else:
            total += probabilities
        del probabilities
    if len(scales) > 1:
        total /= np.float32(len(scales))
    return total


def check_scales_fit(predictor, how, tta_scales):
    """Raise a ``ValueError`` when a fixed-size model would have to take whole images at
    another scale than its own size (``how == "resize"``, a scale other than 1).

    Args:
        predictor: A :class:`~sm_pixel_ce.inference.predictor.Predictor`.
        how: What :func:`plan` returned first: ``"resize"``, ``"whole"`` or ``"tiles"``.
        tta_scales: As :func:`parse_scales` takes them.
    """
    fixed, scales = predictor.fixed_size, parse_scales(tta_scales)
    if how == "resize" and fixed is not None and scales != NO_SCALES:
        raise ValueError(
            f"{predictor.name} takes {fixed[0]}x{fixed[1]} (HxW) inputs only, so whole images "
            "resized to it cannot be predicted at other scales: pass --tile "
            f"{fixed[0]} to scale the image under tiles of the model's size, or drop "
            f"--tta-scales. Received: --tta-scales {scales_text(scales)}"
        )


def predict_batch_scaled(predictor, images, tta="none", tta_scales=None):
    """Probabilities of a batch of whole images of one size, averaged over the flips of ``tta``
    and the scales of ``tta_scales`` (``evaluate``'s ``--size`` path).

    Each scale r resizes the batch to ``int(H * r + 0.5)`` x ``int(W * r + 0.5)`` rounded up to
    the model's multiple (as :func:`predict_image` scales images resized to a size), and the
    probabilities are resized back to ``(H, W)``.

    Args:
        predictor: A :class:`~sm_pixel_ce.inference.predictor.Predictor`.
        images: float32 ``(N, H, W, C)``.
        tta: ``"none"``, ``"hflip"`` or ``"hvflip"``. Defaults to ``"none"``.
        tta_scales: As :func:`parse_scales` takes them. Defaults to None: the batch as it is.

    Returns:
        float32 ``(N, H, W, K)``.

    Raises:
        ValueError: Bad scales, or scales other than 1 for a fixed-size model.
    """
    scales = parse_scales(tta_scales)
    check_scales_fit(predictor, "resize", scales)
    size = images.shape[1:3]

    def at(scale):
        model_input = _input_at(images, *_scaled_size(size, scale, predictor.multiple))
        return predict_batch(predictor, model_input, tta)

    return _mean_over(scales, size, at)


def _slide(predictor, image, tile, stride, tta, batch_size):
    """Predict ``image`` in ``tile`` x ``tile`` windows ``stride`` apart, blended."""
    height, width = image.shape[:2]
    padded = _pad(image, max(height, tile), max(width, tile))
    rows, columns = padded.shape[:2]
    corners = [
        (y, x) for y in tile_starts(rows, tile, stride) for x in tile_starts(columns, tile, stride)
    ]
    window = blend_window(tile, tile)
    total = np.zeros((rows, columns, predictor.num_classes), np.float32)
    weight = np.zeros((rows, columns), np.float32)
    for first in range(0, len(corners), batch_size):
        chunk = corners[first : first + batch_size]
        tiles = np.stack([padded[y : y + tile, x : x + tile] for y, x in chunk])
        for (y, x), probabilities in zip(chunk, predict_batch(predictor, tiles, tta)):
            probabilities *= window[..., None]
            total[y : y + tile, x : x + tile] += probabilities
            weight[y : y + tile, x : x + tile] += window
    total /= weight[..., None]
    if (rows, columns) == (height, width):
        return total
    return np.ascontiguousarray(total[:height, :width])


def plan(predictor, height, width, tile=None, overlap=0.25, size=None, tta_scales=None):
    """How :func:`predict_image` predicts an image of ``height`` x ``width`` pixels (at every
    scale of ``tta_scales``: the plan of the image at its own size).

    Args:
        predictor: A :class:`~sm_pixel_ce.inference.predictor.Predictor`.
        height, width: The image's size.
        tile, overlap, size, tta_scales: As :func:`predict_image`.

    Returns:
        ``("resize", (h, w))``, ``("whole", None)`` or ``("tiles", (tile, stride))``.

    Raises:
        ValueError: As :func:`predict_image`.
    """
    check_overlap(overlap)
    check_positive("tile", tile)
    check_positive("size", size)
    if tile is not None and size is not None:
        raise ValueError(
            "--size resizes the whole image and --tile slides a window over it at its own size; "
            f"pass one of them. Received: tile={tile}, size={size}"
        )
    fixed = predictor.fixed_size
    if fixed is not None:
        if size is not None and fixed != (size, size):
            raise ValueError(
                f"{predictor.name} takes {fixed[0]}x{fixed[1]} (HxW) inputs only: pass --size "
                f"{fixed[0]} or none. Received: size={size}"
            )
        if tile is None:
            check_scales_fit(predictor, "resize", tta_scales)
            return "resize", fixed
        if fixed != (tile, tile):
            raise ValueError(
                f"{predictor.name} takes {fixed[0]}x{fixed[1]} (HxW) inputs only, so its tiles "
                f"must be that size: pass --tile {fixed[0]} or none (the image is then resized "
                f"to {fixed[0]}x{fixed[1]}). Received: tile={tile}"
            )
    parse_scales(tta_scales)
    multiple = predictor.multiple
    if size is not None:
        side = _round_up(size, multiple)
        return "resize", (side, side)
    if tile is None:
        if max(height, width) <= WHOLE_IMAGE_LIMIT:
            return "whole", None
        side = DEFAULT_TILE
    else:
        side = tile if fixed is not None else _round_up(tile, multiple)
        if height < side or width < side:
            rounded = f" (rounded up to {side}, a multiple of {multiple})" if side != tile else ""
            raise ValueError(
                f"image is {width}x{height} px, smaller than --tile {tile}{rounded}; pass a "
                "smaller --tile or none"
            )
    return "tiles", (side, max(1, round(side * (1 - overlap))))


#: :func:`predict_image`'s options that ``predict``'s and ``evaluate``'s options objects carry.
TILING_OPTIONS = ("tile", "overlap", "tta", "batch_size", "tta_scales")


def tiling_options(options):
    """The keyword arguments of :func:`predict_image` that ``options`` carries.

    Args:
        options: An object with the attributes named in :data:`TILING_OPTIONS` (a
            :class:`~sm_pixel_ce.inference.predict.PredictOptions`, an evaluation job).

    Returns:
        ``{name: value}`` for each of :data:`TILING_OPTIONS`.

    Example:
        >>> predict_image(model, image, **tiling_options(options))  # doctest: +SKIP
    """
    return {name: getattr(options, name) for name in TILING_OPTIONS}


def predict_image(
    model, image, tile=None, overlap=0.25, tta="none", batch_size=4, size=None, tta_scales=None
):
    """Class probabilities of one image of any size.

    How it is predicted:

    * a fixed-size model (``input_shape=(256, 256, 3)``, as ``compare`` trains and saves them)
      without ``tile``: the image is resized to the model's size (bilinear, antialiased, as
      :func:`sm_pixel_ce.data.images.to_model_input` reads images for training), predicted, and
      the probabilities resized back to ``(H, W)`` the same way; ``size=S`` does the same at
      S x S for a flexible model (S rounded up to the model's multiple);
    * a flexible model without ``tile``: an image whose longer side is at most 1024 px in one
      call (reflect-padded up to the model's multiple, 32 for Unet/FPN/Linknet, and cropped
      back); a larger one in tiles of 512;
    * ``tile=T``: a sliding window of T x T, ``stride = round(T * (1 - overlap))``; the tiles
      run ``batch_size`` at a time and their probabilities are summed, weighted by
      :func:`blend_window`, and divided by the summed weight. T is rounded up to the model's
      multiple; a fixed-size model takes only its own size.

    ``tta`` averages the probabilities of flipped copies of each model input (each tile, or the
    whole image), flipped back. ``tta_scales`` averages them over scales, as MMSegmentation's
    multi-scale aug test: for each factor r the image is resized to ``int(H * r + 0.5)`` x
    ``int(W * r + 0.5)`` (bilinear, antialiased) and predicted as above (whole, padded to the
    model's multiple; or in the same tiles, the image padded when it became smaller than one),
    or, when whole images are resized to a size S, S becomes ``S * r`` rounded up to the
    model's multiple; the probabilities are resized back to ``(H, W)`` the same way and summed
    into one running sum, then divided by the number of scales. A fixed-size model takes other
    scales only in tiles.

    Args:
        model: A :class:`~sm_pixel_ce.inference.predictor.Predictor`, a Keras model, or a model
            file (see :func:`~sm_pixel_ce.inference.predictor.load_predictor`).
        image: float32 ``(H, W, C)`` as the model takes it: pixel values divided by 255 for
            uint8 images (:data:`sm_pixel_ce.data.SCALES`, as
            :meth:`sm_pixel_ce.data.FolderReader.image` reads them).
        tile: The tile side in pixels, or None for the policy above. Defaults to None.
        overlap: The fraction of a tile shared with the next, in ``[0, 1)``. Defaults to 0.25.
        tta: ``"none"``, ``"hflip"`` (identity and horizontal flip) or ``"hvflip"`` (identity,
            horizontal, vertical, both). Defaults to ``"none"``.
        batch_size: Tiles per model call. Defaults to 4.
        size: Predict at ``size`` x ``size`` (resized, then back). Defaults to None.
        tta_scales: Factors the image is resized by, each predicted and the probabilities
            averaged: ``"0.75,1,1.25"`` or a sequence of numbers. Defaults to None: 1 alone.

    Returns:
        float32 ``(H, W, K)`` probabilities.

    Raises:
        ValueError: A bad ``overlap``, ``tta``, ``tile``, ``size``, ``batch_size`` or
            ``tta_scales`` (naming what is expected and what was received), an image smaller
            than ``tile``, a tile, size or scale a fixed-size model cannot take, or an image of
            other channels than the model's.

    Example:
        >>> image = np.asarray(Image.open("field.jpg"), np.float32) / 255
        >>> probabilities = sm_pixel_ce.predict_image("unet.keras", image, tile=512)
        >>> mask = probabilities.argmax(-1)
    """
    check_tta(tta)
    check_positive("batch_size", batch_size)
    predictor = model if isinstance(model, Predictor) else load_predictor(model)
    image = np.asarray(image, np.float32)
    if image.ndim != 3 or image.shape[-1] != predictor.channels:
        raise ValueError(
            f"{predictor.name} takes images of shape (H, W, {predictor.channels}). "
            f"Received: image of shape {image.shape}"
        )
    scales = parse_scales(tta_scales)
    how, detail = plan(predictor, image.shape[0], image.shape[1], tile, overlap, size, scales)
    original = image.shape[:2]
    if how == "resize":

        def at(scale):
            model_input = _input_at(image, *_scaled_size(detail, scale, predictor.multiple))
            return predict_batch(predictor, model_input[None], tta)[0]

    else:
        if how == "whole":
            run = functools.partial(_whole, predictor, tta=tta)
        else:
            tile, stride = detail
            run = functools.partial(
                _slide, predictor, tile=tile, stride=stride, tta=tta, batch_size=batch_size
            )

        def at(scale):
            return run(_input_at(image, *_scaled_size(original, scale)))

    return _mean_over(scales, original, at)


# --- sizing: as the model was trained, said aloud ----------------------------------------------


def resize_option():
    """The ``resize`` field of a job's options (``--resize``), the explicit opposite of
    ``--tile``: one help text for ``evaluate`` and ``predict``."""
    return option(
        None,
        "resize whole images to the model's size (its data contract's, or --size S) and the "
        "predictions back, as a model trained on whole resized images saw them; the opposite "
        "of --tile (default: as the model's data contract says it was trained)",
    )


def check_sizing(resize, tile):
    """Raise a ``ValueError`` when both ``--resize`` and ``--tile`` are given."""
    if resize and tile is not None:
        raise ValueError(
            "--resize resizes whole images to the model's size and --tile slides a window over "
            f"them at their own scale; pass one. Received: --resize --tile {tile}"
        )


def _side(size):
    return f"{size[0]}x{size[1]}"


#: What :func:`predict_image` does after resizing whole images, for :func:`sizing`'s line.
RESIZED_BACK = "the predictions resized back"


def sizing(predictor, tile=None, resize=None, size=None, after=None):
    """How a job meets the images' size: ``(size, tile, line)``, ``line`` saying in one line
    what is done and which flag does the other.

    By default as the model was trained (its data contract's ``sizing``): ``"resize"``, whole
    images resized to the contract's size (and the predictions back); ``"crop"``, a sliding
    window of that size at the images' own scale (MMSegmentation's ``slide`` mode). A model
    without a contract (or a size in it) keeps the default of :func:`predict_image`: a
    fixed-size model resizes to its size; a flexible one predicts images up to 1024 px whole,
    larger ones in tiles of 512.

    Args:
        predictor: A :class:`~sm_pixel_ce.inference.predictor.Predictor` (its ``contract``).
        tile: ``--tile``: a sliding window of T x T at the images' own scale. Defaults to None.
        resize: ``--resize``: whole images resized to the model's size. Defaults to None.
        size: ``--size``: whole images resized to S x S. Defaults to None.
        after: What the job does after resizing, in words. Defaults to None:
            :data:`RESIZED_BACK`.

    Returns:
        ``(size, tile)`` as :func:`predict_image` takes them, and the line to print.

    Raises:
        ValueError: ``resize`` with ``tile``; a ``size`` that contradicts the contract of a
            model trained on whole images resized; ``resize`` with no size to resize to.
    """
    check_sizing(resize, tile)
    after = RESIZED_BACK if after is None else after
    contract = predictor.contract
    trained = None if contract is None else contract.size
    fixed = predictor.fixed_size
    if tile is not None:
        line = (
            f"sizing: a sliding {tile}x{tile} window at the images' own scale (--tile); "
            "--resize resizes whole images to the model's size instead"
        )
        return None, tile, line
    if size is not None:
        if trained is not None and contract.sizing == "resize" and trained != (size, size):
            raise ValueError(
                f"--size {size} contradicts the model's data contract (size={_side(trained)}, "
                "whole images resized): drop the flag to resize as the model was trained, or "
                "pass --tile T to predict at the images' own scale."
            )
        line = (
            f"sizing: whole images resized to {size}x{size} (--size), {after}; --tile T "
            "predicts at the images' own scale instead"
        )
        return size, None, line
    if trained is not None and (resize or contract.sizing == "resize"):
        why = "--resize" if resize else "as the model was trained (its data contract)"
        line = (
            f"sizing: whole images resized to {_side(trained)} {why}, {after}; --tile "
            f"{trained[0]} predicts at the images' own scale instead"
        )
        return _resized_to(trained, fixed), None, line
    if trained is not None:
        side = min(trained)
        line = (
            f"sizing: a sliding {side}x{side} window at the images' own scale, as the model "
            "was trained on crops (its data contract); --resize resizes whole images to "
            f"{_side(trained)} instead"
        )
        return None, side, line
    source = "no data contract" if contract is None else "no size in its data contract"
    if fixed is not None:
        line = (
            f"sizing: whole images resized to the model's {_side(fixed)} input, {after} (the "
            f"model carries {source}); --tile {fixed[0]} predicts at the images' own scale "
            "instead"
        )
        return None, None, line
    if resize:
        raise ValueError(
            f"--resize resizes whole images to the model's size, but {predictor.name} takes any "
            f"size and carries {source}; pass --size S with it, or --tile T."
        )
    line = (
        f"sizing: images up to {WHOLE_IMAGE_LIMIT} px predicted whole at their own scale, "
        f"larger ones in tiles of {DEFAULT_TILE} (the model carries {source}); --resize with "
        "--size S resizes whole images instead"
    )
    return None, None, line


def _resized_to(trained, fixed):
    """``size`` of :func:`predict_image` for images resized to ``trained``: its side, or None
    for a fixed-size model, which resizes to its own (possibly oblong) size."""
    if fixed is not None:
        return None if fixed != trained or trained[0] != trained[1] else trained[0]
    if trained[0] != trained[1]:
        raise ValueError(
            f"the model was trained on whole images resized to {_side(trained)} (its data "
            "contract), but takes any size; pass --size S for a square size, or --tile T."
        )
    return trained[0]
