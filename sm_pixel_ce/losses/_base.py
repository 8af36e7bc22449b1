"""The Keras ``Loss`` every pixel loss derives from: it stores the options its function declares
(``_options``), hands labels, predictions and sample weights to the function whole and returns a
replica's share under ``tf.distribute``. ``sums`` gives every pixel loss ``a + b`` and ``w * a``."""

import inspect

import tensorflow as tf

from .. import _pixels
from .._version import __version__
from ..flavor import IS_KERAS_3, keras


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

    #: The loss's plain function (``_options.loss_function``): its options are the class's.
    _fn = None
    #: The class's options when they are not its function's (other defaults).
    declaration = None
    #: The loss's name when none (or None) is given.
    default_name = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls._fn is not None and "__init__" not in vars(cls):
            cls.__init__ = _constructor(cls)
            cls.__doc__ = cls._declared().documented(cls.__doc__ or "", stored=True)

    def __init__(self, reduction, name):
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

    @classmethod
    def _declared(cls):
        return cls.declaration or cls._fn.options

    @property
    def pixel_reduction(self):
        """The loss's own reduction (``"none"``: a per-pixel map; tf_keras's may differ)."""
        return self._pixel_reduction

    def __call__(self, y_true, y_pred, sample_weight=None):
        with tf.name_scope(self.name):
            value = self.share(y_true, y_pred, sample_weight)
            if not IS_KERAS_3 and self.reduction == "sum_over_batch_size":
                value = value * tf.cast(_pixels.replicas(), value.dtype)
            return value

    def share(self, y_true, y_pred, sample_weight=None):
        """This replica's share of the loss (the loss itself outside a distribution strategy)."""
        return self._compute(y_true, y_pred, sample_weight, self.options())

    def call(self, y_true, y_pred):
        options = self.options()
        if "reduction" in options:
            options["reduction"] = "none"
        return self._compute(y_true, y_pred, None, options)

    def _compute(self, y_true, y_pred, sample_weight, options):
        fn = type(self)._fn
        return fn.compute(y_true, y_pred, sample_weight, options, fn.__name__)

    def options(self):
        """The loss's checked options, as its function's ``compute`` takes them (a new dict)."""
        declared = self._declared()
        values = {o.name: getattr(self, o.name) for o in declared.stored}
        if declared.reduces:
            values["reduction"] = self._pixel_reduction
        return values

    def get_config(self):
        return {**self.options(), "name": self.name}

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

    def terms(self):
        """``[(weight, loss)]``: the weighted terms this loss adds up (itself, weight 1)."""
        return [(1.0, self)]


def _constructor(cls):
    """``cls.__init__`` from its options: ``(self, <options>, reduction?, name)``, each option
    checked once (errors name the class) and stored as an attribute of the same name."""
    declared = cls._declared()
    signature = declared.constructor_signature(cls.default_name)

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        options = declared.check(values, type(self).__name__)
        reduction = options.pop("reduction", "sum_over_batch_size")
        _PixelLoss.__init__(self, reduction, values["name"] or cls.default_name)
        for key, value in options.items():
            setattr(self, key, value)

    __init__.__signature__ = signature
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = f"Check and store the options; see :class:`{cls.__name__}`."
    return __init__
