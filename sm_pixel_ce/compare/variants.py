"""The training set-ups being compared, each a real segmentation_models model and loss.

Every loss is a public, registered sm_pixel_ce loss written as a spec
(:mod:`~sm_pixel_ce.compare.specs`); the built-in variants are named specs:

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
* ``cce-dice``: ``"pixel_cce_dice"``, i.e. ``pixel_cce + pixel_dice``;
* ``cce-lovasz``: ``pixel_cce + pixel_lovasz`` (Lovász-softmax);
* ``cce-tversky``: ``pixel_cce + pixel_tversky(alpha=0.3, beta=0.7)`` (false negatives weigh more).

``--variants all`` runs every one of them; any other spec (``pixel_cce+0.5*pixel_lovasz``) is a
variant too.

Every variant has the same layers with weights, so all start from the same initial weights.
"""

import dataclasses

import numpy as np

from ..class_weights import weights_from_counts
from ..flavor import keras
from .specs import parse_spec

LABEL_SMOOTHING = 0.1
FOCAL_GAMMA = 2.0
#: ``cce-topk``'s fraction: DeepLab's hard-pixel mining keeps a similar share (top 20-25%).
TOP_K = 0.25
#: ``cce-tversky``'s weights of false positives and false negatives (recall first).
TVERSKY_ALPHA, TVERSKY_BETA = 0.3, 0.7
#: Built-in variant -> (loss spec, or None for the reshape recipe; one-line set-up), in report
#: order.
BUILT_IN = {
    "cce": ("pixel_cce", "pixel_softmax + pixel_cce"),
    "bce": ("pixel_bce", "sigmoid + pixel_bce"),
    "reshape": (None, "Reshape((H*W, C)) + softmax + categorical_crossentropy"),
    "cce-weighted": (
        "pixel_cce(class_weights=median_frequency)",
        "pixel_softmax + pixel_cce, class_weights(method='median_frequency')",
    ),
    "cce-smooth": (
        f"pixel_cce(label_smoothing={LABEL_SMOOTHING})",
        f"pixel_softmax + pixel_cce, label_smoothing={LABEL_SMOOTHING}",
    ),
    "cce-focal": (
        f"pixel_cce(focal_gamma={FOCAL_GAMMA})",
        "pixel_softmax + pixel_cce, focal_gamma=2",
    ),
    "cce-topk": (
        f"pixel_cce(top_k={TOP_K})",
        f"pixel_softmax + pixel_cce, top_k={TOP_K} (the hardest quarter of the pixels)",
    ),
    "cce-balanced": (
        "pixel_cce(class_weights=inverse_frequency)",
        "pixel_softmax + pixel_cce, class_weights(method='inverse_frequency')",
    ),
    # pixel_cce_dice, written as its two terms so that each takes --ignore-index.
    "cce-dice": ("pixel_cce+pixel_dice", "pixel_softmax + pixel_cce_dice (pixel_cce + pixel_dice)"),
    "cce-lovasz": ("pixel_cce+pixel_lovasz", "pixel_softmax + pixel_cce + pixel_lovasz"),
    "cce-tversky": (
        f"pixel_cce+pixel_tversky(alpha={TVERSKY_ALPHA},beta={TVERSKY_BETA})",
        f"pixel_softmax + pixel_cce + pixel_tversky(alpha={TVERSKY_ALPHA}, beta={TVERSKY_BETA})",
    ),
}
#: Built-in variant names in report order, with a one-line description.
VARIANTS = {name: setup for name, (_, setup) in BUILT_IN.items()}
DEFAULT_VARIANTS = ("cce", "bce")
#: What ``--variants all`` stands for.
ALL = "all"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One training set-up: a built-in name or a loss spec.

    Attributes:
        name: File-safe: the run folder, the model file and the report's rows.
        setup: One line for the report.
        spec: The :class:`~sm_pixel_ce.compare.specs.LossSpec`, or None for ``reshape``.
        text: As given in ``--variants``.
    """

    name: str
    setup: str
    spec: object
    text: str

    @property
    def reshape(self):
        """Whether this is the old ``Reshape((H*W, C))`` recipe."""
        return self.spec is None

    @property
    def activation(self):
        return "linear" if self.spec is None else self.spec.activation


def resolve(variant):
    """The :class:`Variant` of a built-in name, a loss spec, or a :class:`Variant` itself.

    Raises:
        ValueError: Neither a variant nor a readable spec (one line, see
            :func:`~sm_pixel_ce.compare.specs.parse_spec`).

    Example:
        >>> resolve("cce-tversky").spec.terms[1].options
        (('alpha', 0.3), ('beta', 0.7))
        >>> resolve("pixel_cce+0.5*pixel_lovasz").name
        'pixel_cce+0.5xpixel_lovasz'
    """
    if isinstance(variant, Variant):
        return variant
    if variant in BUILT_IN:
        text, setup = BUILT_IN[variant]
        return Variant(variant, setup, None if text is None else parse_spec(text), variant)
    spec = parse_spec(variant)
    activation = spec.activation
    return Variant(spec.name, f"{activation} + {spec.text}", spec, variant)


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
    return tuple(BUILT_IN)


def build_model(
    variant,
    arch,
    backbone,
    num_classes,
    size,
    encoder_weights=None,
    freeze_encoder=False,
    channels=3,
    normalization=None,
):
    """Build the model of ``variant`` (uncompiled).

    Args:
        variant: A :class:`Variant`, a key of :data:`VARIANTS` or a loss spec.
        arch: A name of :data:`sm_pixel_ce.input_sizes.ARCHITECTURES`.
        backbone: A segmentation_models backbone name.
        num_classes: C.
        size: Input side in pixels.
        encoder_weights: None (random), ``"imagenet"`` (segmentation_models' download, cached
            in ``~/.keras/models``) or the path of a weights file of the backbone. Defaults to
            None.
        freeze_encoder: segmentation_models' ``encoder_freeze``. Defaults to False.
        channels: Input channels (the images' bands); pretrained ``encoder_weights`` need 3.
            Defaults to 3.
        normalization: ``(mean, variance)`` per channel, or None. When given, the model's
            first layer is a Keras ``Normalization`` with them, so that it takes images as
            :class:`sm_pixel_ce.data.FolderReader` reads them (uint16 and float data: see
            :meth:`sm_pixel_ce.data.FolderSource.normalization`). Defaults to None.

    BatchNormalization layers get momentum :data:`BN_MOMENTUM`, in every variant alike.

    Returns:
        A Keras model whose output is ``(N, size, size, C)``, or ``(N, size*size, C)`` for
        ``reshape``.
    """
    import segmentation_models as sm

    variant = resolve(variant)
    from .encoders import check_encoder_bands, encoder_weights_error, load_encoder_weights

    check_encoder_bands(encoder_weights, channels)

    activation = variant.activation
    try:
        model = getattr(sm, arch)(
            backbone,
            encoder_weights="imagenet" if encoder_weights == "imagenet" else None,
            encoder_freeze=freeze_encoder,
            classes=num_classes,
            activation=activation,
            input_shape=(size, size, channels),
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
    if variant.reshape:
        pixels = keras.layers.Reshape((size * size, num_classes), name="to_pixels")(model.output)
        outputs = keras.layers.Activation("softmax", name="softmax")(pixels)
        model = keras.Model(model.input, outputs, name=f"{model.name}_reshape")
    if normalization is None:
        return model
    # Standardised inside the model: the saved file needs no statistics kept elsewhere.
    mean, variance = normalization
    inputs = keras.Input((size, size, channels), name="image")
    first = keras.layers.Normalization(mean=mean, variance=variance, name="standardise")
    return keras.Model(inputs, model(first(inputs)), name=model.name)


def loss_for(variant, class_counts, num_classes, ignore_index=None):
    """The loss of ``variant`` (objects, so options such as ``ignore_index`` travel with it).

    Args:
        variant: A :class:`Variant`, a key of :data:`VARIANTS` or a loss spec.
        class_counts: The one hook to the training labels: a function of no arguments that
            returns the :class:`~sm_pixel_ce.class_weights.ClassPixels` of the training masks
            (one streamed pass), for specs whose ``class_weights`` names a method of
            :func:`sm_pixel_ce.class_weights`. It is computed on the first call and cached, so
            only variants that call it pay for it.
        num_classes: C.
        ignore_index: Label value not counted, or None; given to every term that does not set
            its own. Defaults to None.

    Returns:
        A Keras loss.
    """
    variant = resolve(variant)
    if variant.reshape:
        # Ignored pixels get all-zero one-hot rows: 0 loss, but still in the mean, as in the recipe.
        return keras.losses.CategoricalCrossentropy()

    def class_weights(method):
        counts = class_counts()
        return weights_from_counts(counts.pixels, method, counts.image_pixels)

    return variant.spec.build(ignore_index=ignore_index, class_weights=class_weights)


def loss_settings(loss):
    """What a report records of a loss: its class and its options (class weights included).

    Returns:
        ``{"class_name": ..., "config": {...}}``, JSON-ready (arrays as lists).

    Example:
        >>> loss_settings(sm_pixel_ce.PixelDiceLoss(ignore_index=255))["config"]["ignore_index"]
        255
    """
    config = {
        key: np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
        for key, value in loss.get_config().items()
    }
    return {"class_name": type(loss).__name__, "config": config}


def targets_for(variant, masks, num_classes, ignore_index=None):
    """Labels in the form ``variant`` trains on: the integer masks ``(N, H, W)`` themselves, or
    one-hot float32 ``(N, H*W, C)`` (a tensor; works on a batch inside ``tf.data``)."""
    if not resolve(variant).reshape:
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
    if resolve(variant).reshape:
        return outputs.reshape(len(outputs), size, size, outputs.shape[-1])
    return outputs
