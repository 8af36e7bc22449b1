"""Loss specs: any registered pixel loss, or a weighted sum of them, as a ``compare`` variant.

A spec is registered loss names joined by ``+``, each with an optional numeric weight and
options in parentheses::

    pixel_cce+0.5*pixel_lovasz
    pixel_tversky(alpha=0.3, beta=0.7)
    pixel_cce(class_weights=median_frequency)+pixel_dice(classes=[1, 2, 3])

Option values are numbers, strings (quoted, or a bare word), ``None``, ``True``/``False`` or
lists of numbers. ``class_weights`` may name a method of :func:`sm_pixel_ce.class_weights`
(``median_frequency``, ``inverse_frequency``, ``enet``): ``compare`` then computes the weights
from the training masks. The text is read with Python's ``ast`` parser and walked by hand,
never evaluated.
"""

import ast
import dataclasses
import inspect
import re

from .._messages import first_line
from .._registry import get, list_names
from ..class_weights import METHODS

#: Losses whose model ends in a sigmoid (independent yes/no per class), not a pixel softmax.
BINARY_LOSSES = ("pixel_bce", "pixel_binary_crossentropy", "PixelBinaryCrossentropy")
_EXAMPLE = "e.g. pixel_cce+0.5*pixel_lovasz or pixel_tversky(alpha=0.3,beta=0.7)"


class UnknownNameError(ValueError):
    """A spec names neither a built-in variant nor a registered loss."""


def split_variants(text):
    """Split ``--variants`` on the commas outside parentheses and brackets.

    Args:
        text: E.g. ``'cce,pixel_tversky(alpha=0.3,beta=0.7)'``.

    Returns:
        A tuple of the stripped, non-empty parts.

    Raises:
        ValueError: Unbalanced parentheses or brackets.

    Example:
        >>> split_variants("cce,pixel_tversky(alpha=0.3,beta=0.7)")
        ('cce', 'pixel_tversky(alpha=0.3,beta=0.7)')
    """
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth < 0:
                break
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise ValueError(f"unbalanced parentheses or brackets in {text!r}.")
    parts.append("".join(current))
    return tuple(part.strip() for part in parts if part.strip())


@dataclasses.dataclass(frozen=True)
class Term:
    """One term of a spec: ``weight * name(**options)``."""

    weight: float
    name: str
    options: tuple  # ((option, value), ...), in the order written


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A parsed loss spec.

    Attributes:
        text: The spec as written (spaces removed).
        terms: The :class:`Term` s, in order.
    """

    text: str
    terms: tuple

    @property
    def name(self):
        """A file-safe name for the run folder, the model file and the report rows:
        ``pixel_cce+0.5*pixel_lovasz`` -> ``pixel_cce+0.5xpixel_lovasz``,
        ``pixel_tversky(alpha=0.3,beta=0.7)`` -> ``pixel_tversky-alpha0.3-beta0.7``."""
        return file_safe(self.text)

    @property
    def activation(self):
        """``"sigmoid"`` when every term is a binary loss, else ``"pixel_softmax"``."""
        binary = all(term.name in BINARY_LOSSES for term in self.terms)
        return "sigmoid" if binary else "pixel_softmax"

    @property
    def data_weights(self):
        """Whether some term takes its class weights from the training masks."""
        return any(dict(term.options).get("class_weights") in METHODS for term in self.terms)

    def build(self, ignore_index=None, class_weights=None):
        """The Keras loss: one object, or the weighted sum of the terms.

        Args:
            ignore_index: Given to every term that takes ``ignore_index`` and does not set it.
                Defaults to None.
            class_weights: Function of a method name returning the weights of the training
                masks, for terms whose ``class_weights`` names a method. Defaults to None.

        Returns:
            A Keras loss object.
        """
        total = None
        for term in self.terms:
            cls = get(term.name, "loss")
            options = dict(term.options)
            if options.get("class_weights") in METHODS:
                if class_weights is None:
                    raise ValueError(
                        f"{self.text}: class_weights={options['class_weights']} needs the "
                        "training masks; received no class_weights function."
                    )
                options["class_weights"] = class_weights(options["class_weights"])
            if ignore_index is not None and "ignore_index" in _parameters(cls):
                options.setdefault("ignore_index", ignore_index)
            loss = cls(**options)
            loss = loss if term.weight == 1 else term.weight * loss
            total = loss if total is None else total + loss
        return total


def file_safe(text):
    """``text`` with only letters, digits and ``._+-`` left: ``*`` -> ``x``, ``(`` ``,`` ``=``
    separators to ``-``, and the rest dropped."""
    text = text.replace("*", "x").replace("(", "-").replace(",", "-")
    text = re.sub(r"[^A-Za-z0-9._+-]", "", text.replace("=", ""))
    return re.sub(r"-+", "-", text).strip("-")


def _parameters(cls):
    return inspect.signature(cls.__init__).parameters


def parse_spec(text):
    """Read one loss spec.

    Args:
        text: E.g. ``"pixel_cce+0.5*pixel_lovasz"``.

    Returns:
        A :class:`LossSpec`.

    Raises:
        ValueError: One line naming what is wrong: not a spec, an unknown loss name (with the
            closest registered one), an option the loss does not take, a value of another kind.

    Example:
        >>> parse_spec("pixel_tversky(alpha=0.3,beta=0.7)").terms[0].options
        (('alpha', 0.3), ('beta', 0.7))
    """
    compact = re.sub(r"\s+", "", text)
    try:
        tree = ast.parse(compact, mode="eval").body
    except SyntaxError:
        raise ValueError(f"{text!r} is not a loss spec ({_EXAMPLE}).") from None
    terms = tuple(_term(node, text) for node in _summands(tree, text))
    for term in terms:
        _check_options(term, text)
    return LossSpec(compact, terms)


def _summands(node, text):
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _summands(node.left, text) + _summands(node.right, text)
    return [node]


def _term(node, text):
    weight = 1.0
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        left, right = node.left, node.right
        if _number(left) is not None:
            weight, node = _number(left), right
        elif _number(right) is not None:
            weight, node = _number(right), left
        else:
            raise ValueError(f"{text!r}: a weight must be a number, as in 0.5*pixel_dice.")
        if not weight > 0:
            raise ValueError(f"{text!r}: weights must be > 0; received {weight}.")
    options = ()
    if isinstance(node, ast.Call):
        if node.args or not isinstance(node.func, ast.Name):
            raise ValueError(
                f"{text!r}: options are written name=value, as in "
                "pixel_tversky(alpha=0.3,beta=0.7)."
            )
        options = tuple((k.arg, _value(k.value, k.arg, text)) for k in node.keywords)
        if any(name is None for name, _ in options):
            raise ValueError(f"{text!r}: options are written name=value.")
        node = node.func
    if not isinstance(node, ast.Name):
        raise ValueError(f"{text!r} is not a loss spec ({_EXAMPLE}).")
    try:
        get(node.id, "loss")
    except ValueError as error:
        hint = str(error).split("?")[0].rsplit(" Did you mean ", 1)
        close = f"; did you mean {hint[1]}?" if len(hint) == 2 else ""
        raise UnknownNameError(
            f"{node.id!r} is neither a variant nor a registered loss{close} "
            f"(losses: {', '.join(n for n in list_names('loss') if n.islower())})."
        ) from None
    return Term(float(weight), node.id, options)


def _number(node):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return None


def _value(node, option, text):
    number = _number(node)
    if number is not None:
        return number
    if isinstance(node, ast.Constant) and (
        node.value is None or isinstance(node.value, (str, bool))
    ):
        return node.value
    if isinstance(node, ast.Name):  # a bare word: a string
        return node.id
    if isinstance(node, ast.List):
        values = [_number(item) for item in node.elts]
        if all(v is not None for v in values):
            return values
    raise ValueError(f"{text!r}: {option}= takes a number, a string, None or a list of numbers.")


def _check_options(term, text):
    parameters = _parameters(get(term.name, "loss"))
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    known = [n for n in parameters if n not in ("self", "reduction", "name", "dtype")]
    for option, _ in term.options:
        if option not in parameters and not takes_any:
            raise ValueError(
                f"{text!r}: {term.name} takes no option {option!r}; its options: "
                f"{', '.join(known)}."
            )
    # The loss checks its own values; weights named by a method are only known from the data.
    options = {k: v for k, v in term.options if not (k == "class_weights" and v in METHODS)}
    try:
        get(term.name, "loss")(**options)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{text!r}: {first_line(error)}") from None
