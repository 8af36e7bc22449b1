"""The Keras ``Loss`` every pixel loss derives from: it hands labels, predictions and sample weights
to the loss function whole, returns a replica's share under ``tf.distribute``, and adds and scales
(``a + b``, ``w * a``) into a :class:`~sm_pixel_ce.losses.sums.PixelLossSum`."""

import inspect
import numbers
import warnings

import tensorflow as tf

from .. import _checks, _pixels
from .._version import __version__
from ..flavor import IS_KERAS_3, keras


def scores_of(y_pred, from_logits, op_type, where):
    """Logits to use (fused path) or probabilities, and whether they are logits."""
    logits = _pixels.logits_behind(y_pred, op_type)
    if logits is not None:
        if from_logits:
            warnings.warn(
                f"{where}: from_logits=True, but the predictions come from a {op_type.lower()} "
                "activation; computing from the logits behind it.",
                stacklevel=3,
            )
        return logits, True
    return y_pred, from_logits


def class_weight_tensor(class_weights, num_classes, dtype, where):
    """``class_weights`` as a ``(C,)`` tensor (None stays None), one weight per class."""
    if class_weights is None:
        return None
    if len(class_weights) != num_classes:
        raise ValueError(
            f"{where}: `class_weights` needs one weight per class: expected {num_classes}, "
            f"received {len(class_weights)} ({list(class_weights)})."
        )
    return tf.constant(class_weights, dtype=dtype)


class _PixelLoss(keras.losses.Loss):
    """A Keras ``Loss`` that hands labels, predictions and sample weights to its function whole.

    Keras's own ``Loss.__call__`` would average per-pixel values over all pixels; these losses
    reduce themselves (weighted mean over counted pixels), in Keras 3 and tf_keras alike.

    Under a distribution strategy the function returns each replica's share of the global loss,
    which is what Keras 3 expects from a loss (its own losses divide by the replica count). tf_keras
    divides a ``"sum_over_batch_size"`` loss by the replica count itself, so there the share is
    handed over multiplied by it.

    ``a + b`` and ``w * a`` (``a * w``) of pixel losses give a ``PixelLossSum``.
    """

    _fn = None

    def __init__(self, reduction, name):
        reduction = _pixels.check_reduction(reduction, type(self).__name__)
        if IS_KERAS_3:
            super().__init__(name=name, reduction=reduction)
        else:
            # tf_keras knows fewer reduction names, and reads `reduction` to decide how to scale
            # the loss across replicas: it sees every mean as "sum_over_batch_size".
            mean_like = reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight")
            super().__init__(
                name=name, reduction="sum_over_batch_size" if mean_like else (reduction or "none")
            )
        self._pixel_reduction = reduction

    def __call__(self, y_true, y_pred, sample_weight=None):
        with tf.name_scope(self.name):
            value = self.share(y_true, y_pred, sample_weight)
            if not IS_KERAS_3 and self.reduction == "sum_over_batch_size":
                value = value * tf.cast(_pixels.replicas(), value.dtype)
            return value

    def share(self, y_true, y_pred, sample_weight=None):
        """This replica's share of the loss (the loss itself outside a distribution strategy)."""
        return type(self)._fn(
            y_true,
            y_pred,
            sample_weight=sample_weight,
            reduction=self._pixel_reduction,
            **self._options(),
        )

    def call(self, y_true, y_pred):
        return type(self)._fn(y_true, y_pred, reduction="none", **self._options())

    def _options(self):
        config = self.get_config()
        for key in ("name", "reduction"):
            config.pop(key, None)
        return config

    @classmethod
    def from_config(cls, config):
        known = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"{cls.__name__}: the saved configuration has option(s) {unknown} that this "
                f"version of sm_pixel_ce ({__version__}) does not know; the model was probably "
                "saved by a newer version: upgrade sm_pixel_ce. "
                f"Expected options among {sorted(known)}. Received: {config}"
            )
        return cls(**config)

    # --- loss arithmetic: a + b, w * a, a * w -----------------------------------------------

    def terms(self):
        """``[(weight, loss)]``: the weighted terms this loss adds up (itself, weight 1)."""
        return [(1.0, self)]

    def __add__(self, other):
        if not isinstance(other, _PixelLoss):
            return NotImplemented
        from .sums import PixelLossSum  # sums.py builds on this module

        pairs = self.terms() + other.terms()
        return PixelLossSum(terms=[t for _, t in pairs], weights=[w for w, _ in pairs])

    def __radd__(self, other):
        # sum([a, b]) starts from 0.
        if isinstance(other, numbers.Number) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, weight):
        if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
            return NotImplemented
        from .sums import PixelLossSum

        weight = _checks.loss_weight(weight, type(self).__name__)
        pairs = self.terms()
        return PixelLossSum(terms=[t for _, t in pairs], weights=[weight * w for w, _ in pairs])

    __rmul__ = __mul__


class _RegionLoss(_PixelLoss):
    """A pixel loss that is one number per batch (or the mean of one per image): it has no
    ``reduction`` option, and its ``call`` gives that number."""

    def __init__(self, name):
        super().__init__(reduction="sum_over_batch_size", name=name)

    def share(self, y_true, y_pred, sample_weight=None):
        return type(self)._fn(y_true, y_pred, sample_weight=sample_weight, **self._options())

    def call(self, y_true, y_pred):
        return self.share(y_true, y_pred)
