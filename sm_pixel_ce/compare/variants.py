"""The training set-ups being compared, each a real segmentation_models model and loss.

* ``cce``: ``activation="pixel_softmax"`` + ``loss="pixel_cce"`` (one class per pixel);
* ``bce``: ``activation="sigmoid"`` + ``loss="pixel_bce"`` (7 independent yes/no questions);
* ``reshape``: the recipe from old answers: linear output, ``Reshape((H*W, C))``, ``softmax``,
  Keras's ``categorical_crossentropy`` on one-hot labels reshaped the same way;
* ``cce-weighted``: ``pixel_cce`` with ``sm_pixel_ce.class_weights`` of the training masks
  (SegNet's median-frequency balancing);
* ``cce-smooth``: ``pixel_cce`` with label smoothing 0.1;
* ``cce-focal``: ``pixel_cce`` with ``focal_gamma=2`` (``"pixel_focal"``);
* ``cce-topk``: ``pixel_cce`` over the hardest quarter of the pixels (``top_k=0.25``);
* ``cce-balanced``: ``pixel_cce`` with ``sm_pixel_ce.class_weights`` of the training masks
  (scikit-learn's "balanced", ``n / (K·n_c)``);
* ``cce-dice``: ``pixel_cce`` + ``sm.losses.DiceLoss()``, segmentation_models' usual recipe.

``--variants all`` runs every one of them.

Every variant has the same layers with weights, so all start from the same initial weights.
"""

import numpy as np

from .._registry import serializable
from ..class_weights import weights_from_counts
from ..flavor import keras
from ..losses import PixelBinaryCrossentropy, PixelCategoricalCrossentropy

#: Variant names in report order, with a one-line description.
VARIANTS = {
    "cce": "pixel_softmax + pixel_cce",
    "bce": "sigmoid + pixel_bce",
    "reshape": "Reshape((H*W, C)) + softmax + categorical_crossentropy",
    "cce-weighted": "pixel_softmax + pixel_cce, class_weights(method='median_frequency')",
    "cce-smooth": "pixel_softmax + pixel_cce, label_smoothing=0.1",
    "cce-focal": "pixel_softmax + pixel_cce, focal_gamma=2",
    "cce-topk": "pixel_softmax + pixel_cce, top_k=0.25 (the hardest quarter of the pixels)",
    "cce-balanced": "pixel_softmax + pixel_cce, class_weights(method='inverse_frequency')",
    "cce-dice": "pixel_softmax + pixel_cce + sm.losses.DiceLoss()",
}
DEFAULT_VARIANTS = ("cce", "bce")
#: What ``--variants all`` stands for.
ALL = "all"
LABEL_SMOOTHING = 0.1
FOCAL_GAMMA = 2.0
#: ``cce-topk``'s fraction: DeepLab's hard-pixel mining keeps a similar share (top 20-25%).
TOP_K = 0.25
#: The method of :func:`sm_pixel_ce.class_weights` each weighted variant takes its weights from.
WEIGHT_METHODS = {"cce-weighted": "median_frequency", "cce-balanced": "inverse_frequency"}
#: BatchNormalization momentum of the compared models. Keras's 0.99 needs several hundred steps
#: before the moving statistics used at evaluation match the data; short comparisons would then
#: score mostly the BatchNorm warm-up, the same noise for every variant.
BN_MOMENTUM = 0.9


def expand_variants(variants):
    """The variant names, with ``("all",)`` standing for every variant in report order.

    Args:
        variants: Variant names, or ``("all",)``.

    Returns:
        A tuple of names (unchecked apart from "all").

    Example:
        >>> expand_variants(["all"])[:3]
        ('cce', 'bce', 'reshape')
    """
    variants = tuple(variants)
    if ALL not in variants:
        return variants
    if len(variants) > 1:
        raise ValueError(
            f"--variants all stands for every variant and takes no others; received "
            f"{','.join(variants)!r}."
        )
    return tuple(VARIANTS)


def build_model(
    variant, arch, backbone, num_classes, size, encoder_weights=None, freeze_encoder=False
):
    """Build the model of ``variant`` (uncompiled).

    Args:
        variant: A key of :data:`VARIANTS`.
        arch: A name of :data:`sm_pixel_ce.input_sizes.ARCHITECTURES`.
        backbone: A segmentation_models backbone name.
        num_classes: C.
        size: Input side in pixels.
        encoder_weights: None (random), ``"imagenet"`` (segmentation_models' download, cached
            in ``~/.keras/models``) or the path of a weights file of the backbone. Defaults to
            None.
        freeze_encoder: segmentation_models' ``encoder_freeze``. Defaults to False.

    BatchNormalization layers get momentum :data:`BN_MOMENTUM`, in every variant alike.

    Returns:
        A Keras model whose output is ``(N, size, size, C)``, or ``(N, size*size, C)`` for
        ``reshape``.
    """
    import segmentation_models as sm

    if variant not in VARIANTS:
        raise ValueError(
            f"Unknown variant. Expected one of {list(VARIANTS)}. Received: {variant!r}"
        )
    from .encoders import encoder_weights_error, load_encoder_weights

    activation = {"bce": "sigmoid", "reshape": "linear"}.get(variant, "pixel_softmax")
    try:
        model = getattr(sm, arch)(
            backbone,
            encoder_weights="imagenet" if encoder_weights == "imagenet" else None,
            encoder_freeze=freeze_encoder,
            classes=num_classes,
            activation=activation,
            input_shape=(size, size, 3),
        )
    except Exception as error:
        if encoder_weights != "imagenet":
            raise
        raise encoder_weights_error(backbone, error) from None
    if encoder_weights not in (None, "imagenet"):
        load_encoder_weights(model, backbone, size, encoder_weights)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    if variant != "reshape":
        return model
    pixels = keras.layers.Reshape((size * size, num_classes), name="to_pixels")(model.output)
    outputs = keras.layers.Activation("softmax", name="softmax")(pixels)
    return keras.Model(model.input, outputs, name=f"{model.name}_reshape")


def loss_for(variant, class_counts, num_classes, ignore_index=None):
    """The loss of ``variant`` (objects, so options such as ``ignore_index`` travel with it).

    Args:
        variant: A key of :data:`VARIANTS`.
        class_counts: The one hook to the training labels: a function of no arguments that
            returns the :class:`~sm_pixel_ce.class_weights.ClassPixels` of the training masks
            (one streamed pass). It is computed on the first call and cached, so only variants
            that call it pay for it.
        num_classes: C.
        ignore_index: Label value not counted, or None. Defaults to None.

    Returns:
        A Keras loss.
    """
    if variant == "bce":
        return PixelBinaryCrossentropy(ignore_index=ignore_index)
    if variant == "reshape":
        # Ignored pixels get all-zero one-hot rows: 0 loss, but still in the mean, as in the recipe.
        return keras.losses.CategoricalCrossentropy()
    if variant in WEIGHT_METHODS:
        counts = class_counts()
        weights = weights_from_counts(
            counts.pixels, WEIGHT_METHODS[variant], counts.image_pixels
        )
        return PixelCategoricalCrossentropy(class_weights=weights, ignore_index=ignore_index)
    if variant == "cce-smooth":
        return PixelCategoricalCrossentropy(
            label_smoothing=LABEL_SMOOTHING, ignore_index=ignore_index
        )
    if variant == "cce-focal":
        return PixelCategoricalCrossentropy(focal_gamma=FOCAL_GAMMA, ignore_index=ignore_index)
    if variant == "cce-topk":
        return PixelCategoricalCrossentropy(top_k=TOP_K, ignore_index=ignore_index)
    if variant == "cce-dice":
        return PixelCceDiceLoss(num_classes, ignore_index=ignore_index)
    return PixelCategoricalCrossentropy(ignore_index=ignore_index)


def loss_settings(loss):
    """What a report records of a loss: its class and its options (class weights included).

    Returns:
        ``{"class_name": ..., "config": {...}}``, JSON-ready (arrays as lists).

    Example:
        >>> loss_settings(PixelCategoricalCrossentropy(ignore_index=255))["config"]["ignore_index"]
        255
    """
    config = {
        key: np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
        for key, value in loss.get_config().items()
    }
    return {"class_name": type(loss).__name__, "config": config}


@serializable
class PixelCceDiceLoss(keras.losses.Loss):
    """``pixel_cce`` + segmentation_models' ``DiceLoss()`` on integer masks (``cce-dice``).

    The masks are one-hot encoded for the Dice term; pixels equal to ``ignore_index`` count in
    neither term (their labels and predictions are zeroed for Dice).

    Args:
        num_classes: C.
        ignore_index: Mask value not counted, or None. Defaults to None.
        reduction: Kept for Keras; the value is already a scalar. Defaults to
            "sum_over_batch_size".
        name: Defaults to "pixel_cce_dice".

    Example:
        >>> model.compile("adam", loss=PixelCceDiceLoss(7, ignore_index=255))
    """

    def __init__(
        self, num_classes, ignore_index=None, reduction="sum_over_batch_size", name="pixel_cce_dice"
    ):
        super().__init__(name=name, reduction=reduction)
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self._cce = PixelCategoricalCrossentropy(ignore_index=ignore_index)

    def __call__(self, y_true, y_pred, sample_weight=None):
        import segmentation_models as sm
        import tensorflow as tf

        cce = self._cce(y_true, y_pred, sample_weight=sample_weight)
        y_pred = tf.convert_to_tensor(y_pred)
        labels = tf.cast(y_true, tf.int32)
        if labels.shape.rank == y_pred.shape.rank:
            labels = labels[..., 0]
        valid = tf.ones_like(labels, tf.bool)
        if self.ignore_index is not None:
            valid = tf.not_equal(labels, self.ignore_index)
        keep = tf.cast(valid, y_pred.dtype)[..., None]
        one_hot = tf.one_hot(tf.where(valid, labels, 0), self.num_classes, dtype=y_pred.dtype)
        return cce + sm.losses.DiceLoss()(one_hot * keep, y_pred * keep)

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "reduction": self.reduction,
            "name": self.name,
        }


def targets_for(variant, masks, num_classes, ignore_index=None):
    """Labels in the form ``variant`` trains on: the integer masks ``(N, H, W)`` themselves, or
    one-hot float32 ``(N, H*W, C)`` (a tensor; works on a batch inside ``tf.data``)."""
    if variant != "reshape":
        return masks
    import tensorflow as tf

    labels = tf.cast(masks, tf.int32)
    labels = tf.reshape(labels, (tf.shape(labels)[0], -1))
    valid = labels < num_classes
    if ignore_index is not None:
        valid &= labels != ignore_index
    # tf.one_hot gives an all-zero row for -1.
    return tf.one_hot(tf.where(valid, labels, -1), num_classes, dtype=tf.float32)


def probabilities_of(variant, outputs, size):
    """Model outputs as ``(N, size, size, C)`` probabilities."""
    outputs = np.asarray(outputs)
    if variant == "reshape":
        return outputs.reshape(len(outputs), size, size, outputs.shape[-1])
    return outputs
