"""The Keras ``Loss`` every pixel loss derives from: it stores the options its function declares
(``_options``) and Keras's ``reduction``, ``name`` and ``dtype``, hands labels, predictions and
sample weights to the function whole and returns a replica's share under ``tf.distribute``.
``sums`` gives every pixel loss ``a + b`` and ``w * a``."""

import inspect

import tensorflow as tf
from keras import ops

from .._backend import hooks
from .._version import __version__
from ..flavor import IS_KERAS_3, IS_TENSORFLOW, keras
from ._options import replace_line

#: A class docstring's ``{call}`` line: its ``Args`` (the options) and ``Returns``.
_CALL = """Args:
    {{options}}

Returns:
    Called as ``loss(y_true, y_pred, sample_weight=None)``: a float32 scalar
    ({none} for ``reduction="none"``, in ``dtype`` when given)."""


class _PixelLoss(keras.losses.Loss):
    """A Keras ``Loss`` that hands labels, predictions and sample weights to its function whole.

    Keras's own ``Loss.__call__`` would average per-pixel values over all pixels; these losses
    reduce themselves (weighted mean over counted pixels), in Keras 3 and tf_keras alike.

    Under a distribution strategy the function returns each replica's share of the global loss,
    which is what Keras 3 expects from a loss (its own losses divide by the replica count), and
    what a custom training loop adds up (``strategy.reduce("SUM", ...)``) in either flavour.
    tf_keras's ``fit`` divides a ``"sum_over_batch_size"`` loss by the replica count itself, so
    a loss that ``compile`` manages hands its share over multiplied by it there.

    Every class takes Keras's ``reduction``, ``name`` and ``dtype`` last (``_options``).
    ``a + b`` and ``w * a`` (``a * w``) of pixel losses give a ``PixelLossSum``.
    """

    #: The loss's plain function (``_options.loss_function``): its options are the class's.
    _fn = None
    #: The class's options when they are not its function's (other defaults, or no function).
    declaration = None
    #: The loss's name when none (or None) is given.
    default_name = None
    #: What a call returns with ``reduction="none"``, in the ``{call}`` line of a class docstring.
    none_shape = "(N,)"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        declared = cls._declared()
        if declared is not None and "__init__" not in vars(cls):
            cls.__init__ = _constructor(cls)
            call = _CALL.format(none=f"``{cls.none_shape}``")
            doc = replace_line(cls.__doc__ or "", "{call}", call)
            cls.__doc__ = declared.documented(doc, stored=True, name=cls.default_name)

    def __init__(self, reduction, name, dtype=None):
        if IS_KERAS_3:
            super().__init__(name=name, reduction=reduction, dtype=dtype)
        else:
            # tf_keras knows fewer reduction names, and reads `reduction` to decide how to scale
            # the loss across replicas: it sees every mean as "sum_over_batch_size".
            mean_like = reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight")
            super().__init__(
                name=name, reduction="sum_over_batch_size" if mean_like else (reduction or "none")
            )
        self._pixel_reduction = reduction
        self._pixel_dtype = dtype

    @classmethod
    def _declared(cls):
        if cls.declaration is not None:
            return cls.declaration
        return None if cls._fn is None else cls._fn.options

    @property
    def pixel_reduction(self):
        """The loss's own reduction (``"none"``: a per-pixel map; tf_keras's may differ)."""
        return self._pixel_reduction

    @property
    def dtype(self):
        """The dtype of the loss's value: ``dtype`` as given, else float32 (float64 predictions
        keep float64 in the cross-entropies)."""
        return self._pixel_dtype or "float32"

    def __call__(self, y_true, y_pred, sample_weight=None):
        with tf.name_scope(self.name):
            value = self.share(y_true, y_pred, sample_weight)
            # Only tf_keras's compile sets the flag: its fit divides by the replica count, a
            # custom loop adds the replicas' shares up as they are.
            if (
                not IS_KERAS_3
                and self.reduction == "sum_over_batch_size"
                and getattr(self, "_allow_sum_over_batch_size", False)
            ):
                value = value * tf.cast(hooks.replicas(), value.dtype)
            return value

    def share(self, y_true, y_pred, sample_weight=None):
        """This replica's share of the loss (the loss itself outside a distribution strategy),
        in the loss's ``dtype``."""
        return self._in_dtype(self._share(y_true, y_pred, sample_weight))

    def _share(self, y_true, y_pred, sample_weight=None):
        """:meth:`share` in the dtype the loss computes in (what a sum adds up)."""
        return self._compute(y_true, y_pred, sample_weight, self.options())

    def call(self, y_true, y_pred):
        options = self.options()
        if "reduction" in options:
            options["reduction"] = "none"
        return self._in_dtype(self._compute(y_true, y_pred, None, options))

    def _in_dtype(self, value):
        if self._pixel_dtype is None:
            return value
        return (
            tf.cast(value, self._pixel_dtype)
            if IS_TENSORFLOW
            else ops.cast(value, self._pixel_dtype)
        )

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

    def _store(self, options):
        """Keep the checked options (but Keras's arguments) as attributes of their names."""
        for key, value in options.items():
            setattr(self, key, value)

    def _option(self, name):
        """The value ``get_config`` gives for the stored option ``name``."""
        return getattr(self, name)

    def get_config(self):
        keras_arguments = {
            "reduction": self._pixel_reduction,
            "name": self.name,
            "dtype": self._pixel_dtype,
        }
        return {
            o.name: keras_arguments[o.name] if o.name in keras_arguments else self._option(o.name)
            for o in self._declared().constructor_options
        }

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
    """``cls.__init__`` from its options: ``(self, <options>, reduction?, name, dtype)``, each
    option checked once (errors name the class) and stored (``_store``)."""
    declared = cls._declared()
    signature = declared.constructor_signature(cls.default_name)

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        options = declared.check(bound.arguments, type(self).__name__, constructor=True)
        reduction = options.pop("reduction", "sum_over_batch_size")
        name, dtype = options.pop("name") or cls.default_name, options.pop("dtype")
        _PixelLoss.__init__(self, reduction, name, dtype)
        self._store(options)

    __init__.__signature__ = signature
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = f"Check and store the options; see :class:`{cls.__name__}`."
    return __init__
