"""What a user writes to train with a variant: its ``model.compile(...)`` line, with every option
the run used (``ignore_index``, class weights) filled in, runnable after ``import sm_pixel_ce``.
"""

from ..losses import PixelLossSum

#: Options that are Keras's bookkeeping, not the loss's settings.
_BOOKKEEPING = ("name", "reduction", "dtype")


def _value(value):
    # Floats as repr writes them, the shortest text that reads back as the same number: the
    # pasted line trains with exactly the run's weights.
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)


def loss_code(loss):
    """Python that builds ``loss``: ``sm_pixel_ce.Class(option=value, ...)`` with the options
    that differ from the class's defaults, and ``w * a + b`` for a :class:`PixelLossSum`.

    Args:
        loss: An sm_pixel_ce loss, or a Keras built-in loss.

    Returns:
        A Python expression (a string).

    Example:
        >>> loss_code(PixelCategoricalCrossentropy(ignore_index=255) + 0.5 * PixelDiceLoss())[-36:]
        ' + 0.5 * sm_pixel_ce.PixelDiceLoss()'
    """
    if isinstance(loss, PixelLossSum):
        return " + ".join(
            ("" if weight == 1 else f"{_value(float(weight))} * ") + loss_code(term)
            for weight, term in loss.terms()
        )
    cls = type(loss)
    module = "sm_pixel_ce" if cls.__module__.startswith("sm_pixel_ce") else "keras.losses"
    defaults = cls().get_config()
    options = [
        f"{key}={_value(value)}"
        for key, value in loss.get_config().items()
        if key not in _BOOKKEEPING and value != defaults.get(key)
    ]
    return f"{module}.{cls.__name__}({', '.join(options)})"


def compile_line(loss, lr):
    """The ``model.compile`` line of a run: Adam at ``lr`` and ``loss`` as :func:`loss_code`.

    Example:
        >>> compile_line(PixelDiceLoss(), 1e-3)
        'model.compile(keras.optimizers.Adam(0.001), loss=sm_pixel_ce.PixelDiceLoss())'
    """
    return f"model.compile(keras.optimizers.Adam({lr:g}), loss={loss_code(loss)})"


#: How the model of a variant is built, for the recommendation (``{arch}``, ``{backbone}``...).
MODEL_LINE = (
    "model = sm.{arch}({backbone!r}, classes={classes}, activation={activation!r}, "
    "encoder_weights={encoder_weights!r})"
)
#: What the lines above need in a fresh process.
IMPORTS = (
    "import sm_pixel_ce",
    "import segmentation_models as sm",
    "from sm_pixel_ce.flavor import keras",
)
