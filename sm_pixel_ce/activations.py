"""``pixel_softmax``: a softmax over the class axis of every pixel, and its layer
``PixelSoftmax``."""

from keras import ops

from . import _checks, _pixels
from ._backend import hooks
from ._registry import register
from .flavor import keras


@register("activation")
def pixel_softmax(x, axis=-1):
    """Softmax over the class axis of every pixel.

    ``p[..., c] = exp(x[..., c] - max(x)) / sum_k exp(x[..., k] - max(x))`` along ``axis``, so
    logits of any size (±1e4) give finite probabilities that sum to 1. Half-precision inputs
    (``mixed_float16`` / ``mixed_bfloat16``) are computed and returned in float32. The logits
    are kept on the output (``_keras_logits``, as Keras's own softmax does), so that
    ``pixel_cce`` computes from them, fused and stable. On another backend (JAX) an array
    takes no attributes: the logits wait in a side table for as long as the output lives, and
    ``pixel_cce`` of that output finds them there (see ``_backend.generic``).

    Args:
        x: Logits, e.g. ``(N, H, W, C)``; at least 2-D. Defaults: none.
        axis: The class axis: ``-1`` for channels_last, ``1`` for channels_first.
            Defaults to -1.

    Returns:
        Probabilities of ``x``'s shape, float32 for half-precision input, else ``x``'s dtype.

    Example:
        >>> import segmentation_models as sm, sm_pixel_ce
        >>> model = sm.Unet("resnet18", encoder_weights=None, classes=7,
        ...                 activation="pixel_softmax")
        >>> model.compile("adam", loss="pixel_cce")
    """
    x = ops.convert_to_tensor(x)
    class_axis = _checks.class_axis(axis, len(x.shape), "pixel_softmax", min_rank=2)
    if _pixels.dtype_name(x) in ("float16", "bfloat16"):
        x = ops.cast(x, "float32")
    output = ops.softmax(x, axis=axis)
    hooks.remember(output, x, class_axis)
    return output


@register("layer")
class PixelSoftmax(keras.layers.Layer):
    """Layer form of :func:`pixel_softmax`, for models built outside segmentation_models.

    Args:
        axis: The class axis: ``-1`` for channels_last, ``1`` for channels_first.
            Defaults to -1.
        **kwargs: Standard layer arguments (``name``, ``dtype``...).

    Returns:
        Per-pixel class probabilities, float32 under mixed precision.

    Example:
        >>> inputs = keras.Input((64, 64, 3))
        >>> logits = keras.layers.Conv2D(7, 1)(inputs)
        >>> model = keras.Model(inputs, PixelSoftmax()(logits))
        >>> model.compile("adam", loss="pixel_cce")
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _checks.axis_argument(axis, type(self).__name__)

    def call(self, inputs):
        return pixel_softmax(inputs, axis=self.axis)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
