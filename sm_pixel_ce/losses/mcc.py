"""``pixel_mcc``: the Matthews correlation loss of segmentation_models_pytorch's ``MCCLoss``, per
class one-vs-rest and averaged over the classes."""

from keras import ops

from .. import _checks
from .._backend import hooks
from .._backend.generic import lane_sums
from .._registry import register, serializable
from . import _options
from ._base import _PixelLoss
from ._functional import RegionInputs, by_image, check_overlap_class_weights, reduce_images
from ._overlap import OVERLAP

_OVERLAP = {o.name: o for o in OVERLAP.options}

#: ``pixel_mcc``'s options.
MCC = _options.Options(
    _options.AXIS,
    _options.FROM_LOGITS,
    _OVERLAP["classes"],
    _options.CLASS_WEIGHTS,
    _options.IGNORE_INDEX,
    _options.Option(
        "eps",
        1e-5,
        _checks.positive,
        "Added to each of TP, FP, FN, TN (segmentation_models_pytorch's ``eps``), > 0. "
        "Defaults to 1e-5.",
    ),
    _options.PER_IMAGE,
    _OVERLAP["sample_weight"],
    _options.REGION_REDUCTION,
)


@serializable
@_options.loss_function(MCC)
def pixel_mcc_loss(y_true, y_pred, sample_weight, options, where):
    """Matthews correlation loss: ``1 - MCC`` of each class against the rest, averaged.

    Per class ``c`` over the counted pixels (weights ``m``): ``TP = Σ m·p_c·y_c``,
    ``FP = Σ m·p_c·(1 - y_c)``, ``FN = Σ m·(1 - p_c)·y_c``, ``TN = Σ m·(1 - p_c)·(1 - y_c)``, each
    plus ``eps``; ``MCC_c = (TP·TN - FP·FN) / sqrt((TP + FP)(TP + FN)(TN + FP)(TN + FN))`` and
    ``ℓ_c = 1 - MCC_c``. Loss: ``Σ_c w_c ℓ_c / Σ_c w_c`` over ``classes`` (the plain mean without
    class weights). On two classes both give the same ``MCC`` (it is symmetric in the two), so
    the loss equals segmentation_models_pytorch 0.5's binary ``MCCLoss(eps)`` on ``p_1`` and the
    mask. A class absent from both labels and predictions has ``MCC ≈ 0`` (loss ≈ 1, no
    gradient to speak of): leave it out with ``classes`` if that offsets the value.

    Shapes: ``y_pred`` ``(N, H, W, C)`` (``(N, C, H, W)`` with ``axis=1``), ``y_true`` an integer
    mask ``(N, H, W)`` / ``(N, H, W, 1)`` of any integer dtype, or dense labels of ``y_pred``'s
    shape (one-hot or soft; an all-zero pixel is not counted); a scalar out. Under
    ``tf.distribute`` the sums are those of the global batch.

    {arguments}

    Example:
        >>> y_true = np.array([[[0, 1], [1, 255]]])                 # (1, 2, 2) integer mask
        >>> y_pred = sm_pixel_ce.pixel_softmax(np.random.randn(1, 2, 2, 2))
        >>> loss = pixel_mcc_loss(y_true, y_pred, ignore_index=255)
        >>> model.compile("adam", loss="pixel_mcc")      # or PixelMCCLoss(...)
    """
    inputs = RegionInputs(y_true, y_pred, options, sample_weight, where, hooks.REGION_LOGITS)
    num_classes, classes = inputs.num_classes, options["classes"]
    class_weights = options["class_weights"]
    check_overlap_class_weights(num_classes, classes, class_weights, where)
    if inputs.dense:
        p = inputs.probabilities()
        weights = inputs.weights
        p_m = p if weights is None else p * weights[..., None]
        y_m = inputs.labels if weights is None else inputs.labels * weights[..., None]
        sums = [lane_sums(p_m), lane_sums(y_m), lane_sums(p_m * inputs.labels)]
    else:  # Dice's sums of a mask (TensorFlow: one softmax with its written-out gradient)
        sums = list(hooks.class_sums(inputs))
    if inputs.weights is None:
        shape = ops.shape(inputs.scores)
        counted = ops.cast(shape[1], "float32") * ops.ones((shape[0], 1), "float32")
    else:
        counted = ops.sum(inputs.weights, axis=1, keepdims=True)
    sums.append(counted)
    if not by_image(options):
        sums = [hooks.global_sums(s) for s in sums]
    s_p, s_y, tp, n = sums
    eps = options["eps"]
    fp, fn, tn = s_p - tp + eps, s_y - tp + eps, n - s_p - s_y + tp + eps
    tp = tp + eps
    mcc = (tp * tn - fp * fn) / ops.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    losses = 1.0 - mcc
    if classes is not None:
        losses = ops.take(losses, classes, axis=-1)
    if class_weights is None:
        loss = ops.mean(losses, axis=-1)
    else:
        w = [float(class_weights[c]) for c in (classes or range(num_classes))]
        loss = ops.sum(losses * ops.convert_to_tensor(w, losses.dtype), axis=-1) / sum(w)
    return inputs.checked(reduce_images(loss, inputs, options))


@register("loss", "pixel_mcc", "pixel_mcc_loss")
class PixelMCCLoss(_PixelLoss):
    """Matthews correlation loss per class, averaged; see :func:`pixel_mcc_loss`.

    {call}

    Example:
        >>> model.compile("adam", loss=PixelMCCLoss(per_image=True, classes=[1, 2, 3]))
        >>> model.compile("adam", loss=0.5 * PixelCategoricalCrossentropy() + PixelMCCLoss())
    """

    _fn = staticmethod(pixel_mcc_loss)
    default_name = "pixel_mcc_loss"
