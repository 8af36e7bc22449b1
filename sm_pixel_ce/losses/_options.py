"""One declaration per loss of its options, their defaults and checks.

A loss's :class:`Options` is the one place its options are spelled. From it come the plain
function's signature (:func:`loss_function`: ``inspect.signature`` and ``help()`` show the real
keyword arguments), the class's constructor and ``get_config`` (``_base._PixelLoss``), and the
validation: once per call of the plain function, once at construction for the class (its calls
check only the tensors), as Keras's ``LossFunctionWrapper`` stores its keyword arguments once.
Keras's own arguments of a loss object (``reduction``, ``name``, ``dtype``) are declared here too,
once for every loss class: :data:`KERAS_ARGUMENTS` end every constructor.
"""

import functools
import inspect
import textwrap
from typing import Callable, NamedTuple

from .. import _checks, _pixels


class Option(NamedTuple):
    """One option: its name, its default, its check ``check(value, where, name)``, which returns
    the value normalised (None for a tensor of the call, passed on unchecked), and its line in
    the docstrings' ``Args`` (ending with its default)."""

    name: str
    default: object
    check: Callable = None
    doc: str = ""


#: The default of an option that has none (a required argument: a sum's ``terms``).
REQUIRED = inspect.Parameter.empty


#: Keras's sample weights: an argument of the plain function only (the class takes them per call).
SAMPLE_WEIGHT = Option(
    "sample_weight",
    None,
    doc="Keras sample weights, ``(N,)`` or ``(N, H, W)``, or None. Defaults to None.",
)
#: The reduction of the cross-entropies (the class hands it to Keras too).
REDUCTION = Option(
    "reduction",
    "sum_over_batch_size",
    _pixels.check_reduction,
    '``"sum_over_batch_size"`` (or ``"mean"``): the weighted mean; '
    '``"mean_with_sample_weight"``: divide by ``Σ sw·w``; ``"sum"``; ``"none"``: the '
    'per-pixel weighted losses ``(N, H, W)``. Defaults to "sum_over_batch_size".',
)
#: The reduction of the region losses (Dice, Jaccard, Tversky, Lovász): over images.
REGION_REDUCTION = REDUCTION._replace(
    doc='``"sum_over_batch_size"`` (or ``"mean"``): the loss as ``per_image`` defines it; '
    "``\"sum\"``: the images' losses added (``per_image``), or the batch's loss once per image, "
    'each image weighted by its sample weight (1 without); ``"mean_with_sample_weight"``: '
    "that sum divided by the images' sample weights; ``\"none\"``: each image's own loss "
    "times its sample weight, ``(N,)``, whatever ``per_image`` "
    '(see ``examples/loss_arguments.md``). Defaults to "sum_over_batch_size".'
)
#: A loss object's name (Keras's ``name``): ``{name}`` is the class's default.
NAME = Option(
    "name",
    None,
    _checks.loss_name,
    'The loss\'s name, which Keras logs and scopes it by. Defaults to "{name}" (None: that).',
)
#: A loss object's dtype (Keras's ``dtype``).
DTYPE = Option(
    "dtype",
    None,
    _checks.loss_dtype,
    'The dtype of the loss\'s value: a float dtype ("float32", "float64", "float16", '
    '"bfloat16") or a Keras ``DTypePolicy`` (its compute dtype), or None for the dtype the '
    "loss computes in (float32; float64 predictions keep float64 in the cross-entropies). The "
    "loss computes in float32 at least whatever ``dtype`` says: half-precision predictions are "
    "promoted, the value is cast. Defaults to None.",
)
#: Keras's arguments that end every loss class's constructor (after ``reduction``).
KERAS_ARGUMENTS = (NAME, DTYPE)
AXIS = Option(
    "axis",
    -1,
    _checks.axis_argument,
    "Class axis of the predictions (``1`` for channels_first). Defaults to -1.",
)
FROM_LOGITS = Option(
    "from_logits", False, _checks.truth, "Whether the predictions are logits. Defaults to False."
)
PER_IMAGE = Option(
    "per_image",
    False,
    _checks.flag,
    "The loss of each image, then the mean over the images (segmentation_models' "
    "``per_image``). Defaults to False.",
)
IGNORE_INDEX = Option(
    "ignore_index",
    None,
    _checks.ignore_index,
    "Integer-mask value whose pixels are not counted, or None. Defaults to None.",
)
CLASS_WEIGHTS = Option(
    "class_weights",
    None,
    _checks.class_weights,
    "One weight ``w_c >= 0`` per class, or None for all 1. Defaults to None.",
)


#: A region loss function's ``{arguments}`` docstring line: its ``Args`` and ``Returns``.
REGION_ARGUMENTS = """Args:
    y_true: An integer mask or dense labels (one-hot or soft; an all-zero pixel is not counted).
    y_pred: Softmax probabilities (or logits with ``from_logits=True``), as above.
    {options}

Returns:
    A float32 scalar (each image's loss, ``(N,)``, for ``reduction="none"``)."""


def replace_line(doc, marker, text):
    """``doc`` with its line holding only ``marker`` replaced by ``text``, at that line's indent.

    Example:
        >>> replace_line("A.\n\n    {x}\n", "{x}", "B:\n    c")
        'A.\n\n    B:\n        c\n'
    """
    for line in doc.splitlines():
        if line.strip() == marker:
            indent = line[: len(line) - len(line.lstrip())]
            return doc.replace(line, textwrap.indent(text, indent))
    return doc


class Options:
    """A loss's options in the plain function's order (``SAMPLE_WEIGHT`` and ``REDUCTION`` where
    the function takes them); the class takes them in the same order, then ``reduction``, then
    :data:`KERAS_ARGUMENTS` (``name``, ``dtype``), as Keras's losses end in them."""

    def __init__(self, *options, together=None):
        self.options = options
        #: ``together(values, where)``: the checks of options that depend on each other (one
        #: ValueError), run after each option's own check; None for none.
        self.together = together

    @property
    def stored(self):
        """The options a loss object stores as attributes (``reduction`` aside)."""
        return [o for o in self.options if o.name not in ("sample_weight", "reduction")]

    @property
    def constructor_options(self):
        """The class's options, which ``get_config`` returns: the stored ones, ``reduction`` when
        the loss takes one, then ``name`` and ``dtype``."""
        reduction = [o for o in self.options if o.name == "reduction"]
        return self.stored + reduction + list(KERAS_ARGUMENTS)

    @property
    def reduces(self):
        """Whether the loss takes a ``reduction``."""
        return any(o.name == "reduction" for o in self.options)

    def replace(self, **defaults):
        """These options with other defaults (``pixel_focal``: ``focal_gamma=2``)."""
        return Options(
            *(o._replace(default=defaults.get(o.name, o.default)) for o in self.options),
            together=self.together,
        )

    def check(self, values, where, constructor=False):
        """The checked, normalised values of every option but ``sample_weight``, a dict (of the
        class's options with ``constructor``)."""
        options = self.constructor_options if constructor else self.options
        checked = {
            o.name: o.check(values[o.name], where, o.name)
            for o in options
            if o.name != "sample_weight"
        }
        if self.together is not None:
            self.together(checked, where)
        return checked

    def documented(self, doc, stored=False, name=None):
        """``doc`` with its ``{options}`` line replaced by one ``Args`` entry per option (with
        ``stored``: a class's, its default ``name`` in the entry of ``name``); a region loss's
        ``{arguments}`` line by :data:`REGION_ARGUMENTS` first."""
        doc = replace_line(doc, "{arguments}", REGION_ARGUMENTS)
        options = self.constructor_options if stored else self.options
        for line in doc.splitlines():
            if line.strip() == "{options}":
                indent = line[: len(line) - len(line.lstrip())]
                break
        else:
            return doc
        entries = "\n".join(
            textwrap.fill(
                f"{o.name}: {o.doc.replace('{name}', str(name))}",
                width=100,
                initial_indent=indent,
                subsequent_indent=indent + "    ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            for o in options
        )
        return doc.replace(indent + "{options}", entries)

    def function_signature(self):
        """``(y_true, y_pred, <options>)``."""
        return inspect.Signature(
            [_parameter("y_true"), _parameter("y_pred")]
            + [_parameter(o.name, o.default) for o in self.options]
        )

    def constructor_signature(self, name):
        """``(self, <stored options>, reduction?, name, dtype)`` with the loss's default
        ``name``."""
        return inspect.Signature(
            [_parameter("self")]
            + [
                _parameter(o.name, name if o is NAME else o.default)
                for o in self.constructor_options
            ]
        )


def _parameter(name, default=inspect.Parameter.empty):
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)


def loss_function(options):
    """Make a loss's plain function from ``compute(y_true, y_pred, sample_weight, options,
    where)``, which takes the checked options as a dict.

    The function takes ``(y_true, y_pred, <options>)`` as ``options`` declares them, checks the
    options (errors name the function) and calls ``compute``; ``compute`` stays reachable as its
    ``compute`` attribute, for the loss class, whose options are checked already.

    Args:
        options: The loss's :class:`Options`.

    Returns:
        A decorator: ``compute`` in, the loss's public function out (its docstring's
        ``{options}`` line replaced by the options' ``Args``).

    Example:
        >>> @loss_function(Options(AXIS, FROM_LOGITS, SAMPLE_WEIGHT))
        ... def pixel_loss(y_true, y_pred, sample_weight, options, where):
        ...     '''The docstring, with Args and their defaults.'''
    """

    def make(compute):
        signature = options.function_signature()

        @functools.wraps(compute)
        def function(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = bound.arguments
            where = compute.__name__
            return compute(
                values["y_true"],
                values["y_pred"],
                values.get("sample_weight"),
                options.check(values, where),
                where,
            )

        function.__signature__ = signature
        function.__doc__ = options.documented(compute.__doc__)
        function.options = options
        function.compute = compute
        return function

    return make
