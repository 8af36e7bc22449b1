"""The size an export is traced at, and the serving function traced there.

A model built with ``input_shape=(None, None, 3)`` (a ``SizeCheckedModel``) takes any size its
architecture allows; a converter needs either one fixed size (TFLite) or a graph that keeps H and W
unknown (ONNX, SavedModel). The size rule of :mod:`sm_pixel_ce.input_sizes` applies to the size
asked for, with its usual message.
"""

import tensorflow as tf

from ..input_sizes import check_input_shape, size_requirement

#: The side of generated check images when the export keeps H and W unknown.
DEFAULT_SAMPLE_SIDE = 64
#: The serving signature's input and output names (TF Serving, TFLite, ONNX).
INPUT_NAME = "images"
OUTPUT_NAME = "outputs"


def parse_size(size):
    """``256``, ``"256"``, ``"256,320"`` or ``(256, 320)`` as ``(height, width)``; None stays None.

    Raises:
        ValueError: Not one or two positive integers.

    Example:
        >>> parse_size("256,320")
        (256, 320)
    """
    if size is None:
        return None
    values = size.split(",") if isinstance(size, str) else size
    if isinstance(values, int):
        values = [values]
    try:
        values = [int(v) for v in values]
    except (TypeError, ValueError):
        values = []
    if len(values) not in (1, 2) or min(values) < 1:
        raise ValueError(
            f"size must be H or H,W in pixels (positive integers). Received: size={size!r}"
        )
    return (values[0], values[-1])


def model_input(model):
    """``(height, width, channels)`` of a channels_last image model; None for a varying size.

    Raises:
        ValueError: The model does not take one 4-D image input.
    """
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4:
        raise ValueError(
            "export takes models with one image input of shape (batch, H, W, C). "
            f"Received: input_shape={shape}"
        )
    if getattr(model, "data_format", "channels_last") == "channels_first":
        raise ValueError(
            "export takes channels_last models. Received: data_format='channels_first'"
        )
    return tuple(shape[1:])


def export_size(model, size, format):
    """The ``(height, width)`` to trace at, checked against the architecture's size rule.

    Args:
        model: The Keras model.
        size: ``(height, width)`` from :func:`parse_size`, or None for the model's own size.
        format: ``"tflite"``, ``"onnx"`` or ``"saved_model"``.

    Returns:
        ``(height, width)``; ``(None, None)`` keeps H and W unknown (ONNX and SavedModel only).

    Raises:
        ValueError: A size the architecture cannot take, a size other than a fixed-size model's
            own, or no size for a TFLite export of a model with unknown H and W.
    """
    height, width, channels = model_input(model)
    architecture = getattr(model, "architecture", None)
    backbone = getattr(model, "backbone", None)
    if size is None:
        if (height is None or width is None) and format == "tflite":
            hint = ""
            if architecture:
                multiple, minimum, _ = size_requirement(architecture, backbone, fixed_size=False)
                hint = (
                    f" ({architecture} on {backbone}: multiples of {multiple}, at least {minimum})"
                )
            raise ValueError(
                "TFLite needs a fixed input size and this model takes any size "
                f"(input_shape={model.input_shape}): pass --size H[,W] (size=...) to trace it at "
                f"the size you will run it at{hint}. Received: size=None"
            )
        return (height, width)
    if height is not None and width is not None:
        if (height, width) != tuple(size):
            raise ValueError(
                f"this model was built for {height}x{width} inputs and is exported at that size; "
                "build it with input_shape=(None, None, C) to export at other sizes. "
                f"Received: size={size[0]},{size[1]}"
            )
        return (height, width)
    if architecture:
        # A None-size model has no builder floor (inceptionv3's 75 px): only the multiple.
        check_input_shape((size[0], size[1], channels), architecture, backbone, fixed_size=False)
    return tuple(size)


def serving_function(model, height, width):
    """The model's inference as a ``tf.function`` with one input signature.

    Args:
        model: The Keras model.
        height: Traced height, or None to keep it unknown.
        width: Traced width, or None to keep it unknown.

    Returns:
        A ``tf.function`` from ``images`` (float32 ``(batch, H, W, C)``) to
        ``{"outputs": model(images, training=False)}``; the batch size stays unknown.
    """
    channels = model_input(model)[2]
    spec = tf.TensorSpec((None, height, width, channels), tf.float32, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(images):
        return {OUTPUT_NAME: tf.cast(model(images, training=False), tf.float32)}

    if height is not None and width is not None:
        return serve
    try:
        serve.get_concrete_function()  # traced once here; the converters reuse it
    except (tf.errors.OperatorNotAllowedInGraphError, TypeError, ValueError) as error:
        raise DynamicSizeError(
            "this model cannot be traced with unknown height and width (in Keras 3, "
            "UpSampling2D(interpolation='bilinear'), as in FPN, needs known sizes): pass --size "
            f"H[,W] (size=...) to export it at a fixed size. Received: size=None; "
            f"{_last_line(error)}"
        ) from None
    return serve


class DynamicSizeError(ValueError):
    """The model cannot be traced with unknown height and width; a fixed size is needed."""


def _last_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if "Exception encountered" in line or "Error" in line]
    line = (useful or lines or [""])[-1][:200]
    name = type(error).__name__
    return line if line.startswith(name) else f"{name}: {line}"


def sample_size(height, width, model):
    """The ``(height, width)`` of generated check images: the traced size, else the smallest size
    of at least :data:`DEFAULT_SAMPLE_SIDE` that the architecture takes."""
    if height is not None and width is not None:
        return (height, width)
    architecture = getattr(model, "architecture", None)
    multiple, minimum = (
        size_requirement(architecture, getattr(model, "backbone", None), fixed_size=False)[:2]
        if architecture
        else (32, 32)
    )
    side = max(minimum, -(-DEFAULT_SAMPLE_SIDE // multiple) * multiple)
    return (height or side, width or side)
