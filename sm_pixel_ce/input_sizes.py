"""Input sizes that segmentation_models' architectures can take, checked with a clear error.

segmentation_models' encoders halve the image five times (stride 32) and its decoders join each
upsampled map with the encoder map of the same size; PSPNet pools its feature map into 1, 2, 3 and
6 bins. Any other size fails deep inside Keras (``A Concatenate layer requires inputs with matching
shapes``, ``ConcatOp: Dimension 1 in both shapes must be equal``), or, for a few backbones, builds a
model whose output is smaller than its input. This module says the rule instead:

* :func:`size_requirement` — the multiple and the minimum for an architecture and backbone; a
  backbone's own floor (keras-applications' InceptionV3: 75 px) holds only for a fixed
  ``input_shape``, checked when the model is built, so a model built with ``None`` sizes has none;
* :func:`check_input_shape` — a ``ValueError`` naming the rule, the received shape and the
  nearest sizes that work (``sm_pixel_ce`` calls it when ``sm.Unet``/``FPN``/``Linknet``/
  ``PSPNet`` build a model);
* :class:`SizeCheckedModel` — what those builders return for ``input_shape=(None, None, 3)``: the
  same functional model (same layers, same indices, same weights), which checks every input it is
  called on, so ``predict`` on a 65 × 65 image says "divisible by 32" instead of a ConcatOp error.
"""

import tensorflow as tf

from ._registry import register
from .flavor import IS_KERAS_3, IS_TENSORFLOW, keras

#: Architectures whose encoder output (stride 32) is joined with upsampled decoder maps.
ENCODER_STRIDE = 32
#: Backbones whose builder refuses a fixed ``input_shape`` under this many pixels (the
#: ``min_size`` check of keras-applications' InceptionV3, which segmentation_models' copy keeps).
#: The check looks only at the sizes it is given: a ``None`` size has no floor, and the model then
#: runs at any multiple of 32 (32 included). sm's inceptionresnetv2 checks 32 px, the stride's own.
MINIMUM_SIZES = {"inceptionv3": 75}
ARCHITECTURES = ("Unet", "FPN", "Linknet", "PSPNet")


def size_requirement(architecture, backbone=None, downsample_factor=8, *, fixed_size=True):
    """The sizes an architecture on a backbone takes: a multiple and a minimum, for H and W.

    Args:
        architecture: ``"Unet"``, ``"FPN"``, ``"Linknet"`` or ``"PSPNet"``.
        backbone: The backbone name (only ``inceptionv3`` has a larger minimum, and only with
            ``fixed_size``). Defaults to None.
        downsample_factor: PSPNet's ``downsample_factor`` (4, 8 or 16). Defaults to 8.
        fixed_size: True for a size fixed in the ``input_shape`` the model is built with, where
            the backbone's builder applies its floor; False for the size a model built with
            ``None`` height or width is called on, where only the multiple holds. Defaults to True.

    Returns:
        ``(multiple, minimum, reason)``: height and width must be multiples of ``multiple`` and
        at least ``minimum``; ``reason`` says why, in a sentence.

    Example:
        >>> size_requirement("Unet")
        (32, 32, "...")
        >>> size_requirement("Unet", "inceptionv3")[:2]
        (32, 96)
        >>> size_requirement("Unet", "inceptionv3", fixed_size=False)[:2]
        (32, 32)
        >>> size_requirement("PSPNet", downsample_factor=4)[:2]
        (24, 24)
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"Unknown architecture. Expected one of {list(ARCHITECTURES)}. "
            f"Received: architecture={architecture!r}"
        )
    if architecture == "PSPNet":
        multiple = 6 * downsample_factor
        reason = (
            f"PSPNet pools its feature map (1/{downsample_factor} of the input) into 1, 2, 3 and 6 "
            f"bins, so H and W must be multiples of 6 x downsample_factor = {multiple}"
        )
    else:
        multiple = ENCODER_STRIDE
        reason = (
            "segmentation_models' encoder halves the size 5 times "
            f"(stride {ENCODER_STRIDE}) and the "
            f"{architecture} decoder joins each upsampled map with the encoder map of the same size"
        )
    minimum = multiple
    if fixed_size and backbone in MINIMUM_SIZES:  # each architecture builds it on the full input
        smallest = MINIMUM_SIZES[backbone]
        minimum = -(-smallest // multiple) * multiple
        reason += f"; {backbone}'s builder also refuses a fixed input_shape under {smallest} px"
    return multiple, minimum, reason


def spatial_axes(data_format=None):
    """The positions of H and W in an image shape without its batch axis."""
    data_format = data_format or keras.backend.image_data_format()
    return (1, 2) if data_format == "channels_first" else (0, 1)


def _nearest(size, multiple, minimum):
    below = size - size % multiple
    above = below + multiple
    sizes = [s for s in (below, above) if s >= minimum] or [minimum]
    return " or ".join(str(s) for s in sizes)


def size_error(sizes, architecture, backbone, multiple, minimum, reason, received):
    """The message for spatial ``sizes`` (``{"height": 65, ...}``) that break the rule, else None.

    Args:
        sizes: ``{"height": h, "width": w}``; unknown sizes (None) are not checked.
        architecture: The architecture's name, for the message.
        backbone: The backbone's name, for the message (may be None).
        multiple: H and W must be multiples of this.
        minimum: H and W must be at least this.
        reason: Why, in a sentence (from :func:`size_requirement`).
        received: What to show as received, e.g. ``"input_shape=(65, 65, 3)"``.

    Returns:
        The error message, or None when every known size is allowed.
    """
    wrong = {
        axis: size
        for axis, size in sizes.items()
        if size is not None and (size % multiple or size < minimum)
    }
    if not wrong:
        return None
    fixes = "; ".join(
        f"{axis} {size} -> {_nearest(size, multiple, minimum)}" for axis, size in wrong.items()
    )
    varying = (
        ""
        if architecture == "PSPNet"
        else f"; a model built with input_shape=(None, None, C) takes any multiple of {multiple}"
    )
    return (
        f"{_rule(architecture, backbone, multiple, minimum, reason)}. Received: {received}. Pad or "
        f"resize the images (nearest sizes that work: {fixes}){varying}."
    )


def _rule(architecture, backbone, multiple, minimum, reason):
    on = f" on {backbone}" if backbone else ""
    return (
        f"{architecture}{on} needs input height and width that are multiples of {multiple} and at "
        f"least {minimum}: {reason}"
    )


def check_input_shape(
    input_shape,
    architecture,
    backbone=None,
    downsample_factor=8,
    data_format=None,
    *,
    fixed_size=True,
):
    """Raise a ``ValueError`` that states segmentation_models' size rule if ``input_shape`` breaks
    it.

    Args:
        input_shape: ``(H, W, C)`` (channels_last) or ``(C, H, W)``; ``None`` for a size that
            varies (not checked).
        architecture: ``"Unet"``, ``"FPN"``, ``"Linknet"`` or ``"PSPNet"``.
        backbone: The backbone's name. Defaults to None.
        downsample_factor: PSPNet's ``downsample_factor``. Defaults to 8.
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults to Keras's setting.
        fixed_size: True when ``input_shape`` is what a model is built with (its known sizes are
            fixed, so the backbone's floor applies to them); False for a size that a model built
            with ``None`` sizes is to be called or traced at. Defaults to True.

    Returns:
        ``(multiple, minimum, reason)`` from :func:`size_requirement`.

    Raises:
        ValueError: ``input_shape`` is not 3 values, H or W is not an allowed size, or PSPNet is
            asked for a size that varies.

    Example:
        >>> check_input_shape((65, 65, 3), "Unet", "resnet18")
        Traceback (most recent call last):
        ValueError: Unet on resnet18 needs input height and width that are multiples of 32 ...
    """
    multiple, minimum, reason = size_requirement(
        architecture, backbone, downsample_factor, fixed_size=fixed_size
    )
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3:
        raise ValueError(
            f"{architecture} expects input_shape of 3 values, (H, W, C) for channels_last or "
            f"(C, H, W) for channels_first, with None for a size that varies. "
            f"Received: input_shape={input_shape!r}"
        )
    h_axis, w_axis = spatial_axes(data_format)
    height, width = shape[h_axis], shape[w_axis]
    if architecture == "PSPNet" and (height is None or width is None):
        example = max(1, round(384 / multiple)) * multiple
        raise ValueError(
            f"PSPNet needs a fixed input size: segmentation_models sizes its pooling bins for one "
            f"size, multiples of {multiple} (6 x downsample_factor={downsample_factor}). Received: "
            f"input_shape={shape}. Use e.g. input_shape=({example}, {example}, 3), "
            "or Unet/FPN/Linknet "
            f"for sizes that vary."
        )
    message = size_error(
        {"height": height, "width": width},
        architecture,
        backbone,
        multiple,
        minimum,
        reason,
        f"input_shape={shape}",
    )
    if message:
        raise ValueError(message)
    return multiple, minimum, reason


@register("layer")
class SizeCheckedModel(keras.Model):
    """A functional segmentation model that checks the height and width of what it is called on.

    segmentation_models' builders, after ``import sm_pixel_ce``, return one for input shapes with
    ``None`` height or width. It is the same functional model (layers, indices, weights and outputs
    unchanged); calling, fitting or predicting on a size the architecture cannot take raises an
    error that states the rule (a ``ValueError`` when the size is known when the step is traced, an
    ``InvalidArgumentError`` with the same text when it is only known at run time) instead of a
    Keras shape error deep inside the decoder. Under XLA (``jit_compile=True``) TensorFlow drops
    run-time assertions, so only the trace-time check runs there.

    Args:
        inputs: The model's input tensor(s), as for ``keras.Model``.
        outputs: The model's output tensor(s).
        architecture: ``"Unet"``, ``"FPN"``, ``"Linknet"`` or ``"PSPNet"``.
        backbone: The backbone's name. Defaults to None.
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults to Keras's setting.
        **kwargs: Other ``keras.Model`` arguments (``name``...).

    Returns:
        A ``keras.Model``.

    Example:
        >>> model = sm.Unet("resnet18", input_shape=(None, None, 3), encoder_weights=None)
        >>> model.predict(np.zeros((1, 65, 65, 3)))
        Traceback (most recent call last):
        ValueError: Unet on resnet18 needs input height and width that are multiples of 32 ...
    """

    # Each Keras saves a functional subclass as a functional model only when its constructor's
    # positional arguments are those of its Functional class, which differ between the two.
    if IS_KERAS_3:

        def __init__(
            self,
            inputs,
            outputs,
            name=None,
            *,
            architecture="Unet",
            backbone=None,
            data_format=None,
            **kwargs,
        ):
            super().__init__(inputs, outputs, name=name, **kwargs)
            self._set_size_check(architecture, backbone, data_format)
    else:

        def __init__(
            self,
            inputs,
            outputs,
            name=None,
            trainable=True,
            *,
            architecture="Unet",
            backbone=None,
            data_format=None,
            **kwargs,
        ):
            super().__init__(inputs, outputs, name=name, trainable=trainable, **kwargs)
            self._set_size_check(architecture, backbone, data_format)

    def _set_size_check(self, architecture, backbone, data_format):
        self.architecture = architecture
        self.backbone = backbone
        self.data_format = data_format or keras.backend.image_data_format()
        # Its fixed sizes, if any, passed the builder's floor; the sizes it varies in have none.
        self._size_rule = size_requirement(architecture, backbone, fixed_size=False)

    def call(self, inputs, training=None, mask=None):
        checked = self._check_sizes(inputs)
        return super().call(checked, training=training, mask=mask)

    def _check_sizes(self, inputs):
        if not IS_TENSORFLOW:
            return self._check_static_sizes(inputs)
        flat = tf.nest.flatten(inputs)
        if not flat:
            return inputs
        if not tf.is_tensor(flat[0]):
            flat[0] = tf.convert_to_tensor(flat[0])
        image = flat[0]
        if image.shape.rank != 4:
            return tf.nest.pack_sequence_as(inputs, flat)
        if all(size is not None for size in self._known_sizes(image.shape)):
            return tf.nest.pack_sequence_as(inputs, flat)
        multiple, minimum, reason = self._size_rule
        sizes = tf.gather(tf.shape(image), self._axes())
        allowed = tf.reduce_all(tf.logical_and(sizes % multiple == 0, sizes >= minimum))
        rule = _rule(self.architecture, self.backbone, multiple, minimum, reason)
        assertion = tf.debugging.Assert(
            allowed,
            [f"{rule}. Received: an input of height and width", sizes, "Pad or resize the images."],
        )
        with tf.control_dependencies([assertion]):
            flat[0] = tf.identity(image)
        return tf.nest.pack_sequence_as(inputs, flat)

    def _check_static_sizes(self, inputs):
        """Off TensorFlow (JAX): shapes are static inside every trace, so one check is enough."""
        flat = keras.tree.flatten(inputs)
        if not flat or len(flat[0].shape) != 4:
            return inputs
        self._known_sizes(tuple(flat[0].shape))
        return inputs

    def _axes(self):
        """The height and width axes of a batch of inputs."""
        return [axis + 1 for axis in spatial_axes(self.data_format)]

    def _known_sizes(self, shape):
        """Height and width of a batch ``shape`` (None where unknown until it runs).

        Raises:
            ValueError: A known size the architecture cannot take.
        """
        multiple, minimum, reason = self._size_rule
        static = {name: shape[axis] for name, axis in zip(("height", "width"), self._axes())}
        message = size_error(
            static,
            self.architecture,
            self.backbone,
            multiple,
            minimum,
            reason,
            f"an input of shape {tuple(shape)}",
        )
        if message:
            raise ValueError(message)
        return list(static.values())

    def get_config(self):
        config = super().get_config()
        config["size_check"] = {
            "architecture": self.architecture,
            "backbone": self.backbone,
            "data_format": self.data_format,
        }
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        size_check = config.pop("size_check", {})
        model = super().from_config(config, custom_objects=custom_objects)
        model._set_size_check(
            size_check.get("architecture", "Unet"),
            size_check.get("backbone"),
            size_check.get("data_format"),
        )
        return model
