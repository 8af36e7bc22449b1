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


#: ``--optimizer``: the Keras optimizer class of each choice and the options it takes from the
#: run's (``--momentum``). The one declaration from which the optimizer is built and printed.
OPTIMIZERS = {"adam": ("Adam", ()), "adamw": ("AdamW", ()), "sgd": ("SGD", ("momentum",))}


def optimizer_parts(optimizer, momentum):
    """``(class name, keyword arguments)`` of ``--optimizer`` ``optimizer``; a ValueError naming
    the flag for an unknown one (the one check of it, for the options and for direct callers)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"--optimizer must be one of {', '.join(OPTIMIZERS)}; received {optimizer!r}."
        )
    name, takes = OPTIMIZERS[optimizer]
    kwargs = {"momentum": float(momentum)} if "momentum" in takes and momentum else {}
    return name, kwargs


def make_optimizer(keras, optimizer="adam", lr=1e-3, momentum=0.9):
    """The Keras optimizer of a run: ``keras.optimizers.<Class>(lr, **options)``.

    Args:
        keras: The Keras module of this process (``sm_pixel_ce.flavor.keras``).
        optimizer: A key of :data:`OPTIMIZERS` (``"adam"``, ``"adamw"``, ``"sgd"``).
        lr: The learning rate.
        momentum: SGD's momentum (0: plain SGD); the other optimizers take none.

    Returns:
        A new optimizer, the one :func:`optimizer_code` writes.

    Example:
        >>> make_optimizer(keras, "sgd", 0.01, 0.0).get_config()["momentum"]
        0.0
    """
    name, kwargs = optimizer_parts(optimizer, momentum)
    return getattr(keras.optimizers, name)(lr, **kwargs)


def optimizer_code(optimizer="adam", lr=1e-3, momentum=0.9):
    """Python that builds :func:`make_optimizer`'s optimizer.

    Example:
        >>> optimizer_code("sgd", 0.01, 0.9)
        'keras.optimizers.SGD(0.01, momentum=0.9)'
    """
    name, kwargs = optimizer_parts(optimizer, momentum)
    arguments = [f"{lr:g}"] + [f"{key}={value:g}" for key, value in kwargs.items()]
    return f"keras.optimizers.{name}({', '.join(arguments)})"


def compile_line(loss, lr, optimizer="adam", momentum=0.9):
    """The ``model.compile`` line of a run: its optimizer (:func:`optimizer_code`) at ``lr`` and
    ``loss`` as :func:`loss_code`.

    Example:
        >>> compile_line(PixelDiceLoss(), 1e-3)
        'model.compile(keras.optimizers.Adam(0.001), loss=sm_pixel_ce.PixelDiceLoss())'
    """
    return f"model.compile({optimizer_code(optimizer, lr, momentum)}, loss={loss_code(loss)})"


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
