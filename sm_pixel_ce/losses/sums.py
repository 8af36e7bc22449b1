"""Sums of pixel losses: ``a + b`` and ``w * a`` of any of them (:class:`PixelLossSum`),
``"pixel_cce_dice"`` (``pixel_cce + pixel_dice`` by name), and :class:`PixelLossTerm`, the metric
that logs one term next to the total."""

import numbers

import tensorflow as tf
from keras import ops

from .. import _checks, _pixels
from .._backend import hooks
from .._registry import register
from ..flavor import IS_TENSORFLOW, keras
from . import _functional
from ._base import _PixelLoss
from ._options import REDUCTION, REQUIRED, Option, Options
from ._overlap import _OverlapLoss
from .boundary import (
    PixelBoundaryLoss,
    boundary_maps,
    boundary_parts,
    image_shape,
    weighted_maps,
)
from .cross_entropy import PixelCategoricalCrossentropy, sparse_cross_entropy_mean
from .dice import PixelDiceLoss


def _pixel_loss(term, where):
    """A pixel loss from a loss or its serialization; a ValueError for anything else."""
    if isinstance(term, dict):
        term = keras.losses.deserialize(term)
    if not isinstance(term, _PixelLoss):
        raise ValueError(
            f"{where}: every term must be an sm_pixel_ce pixel loss (pixel_cce, pixel_bce, "
            "pixel_focal, pixel_dice, pixel_jaccard, pixel_tversky, pixel_lovasz or a sum). "
            f"Received: {term!r}"
        )
    if term.pixel_reduction in ("none", None):
        raise ValueError(
            f"{where}: a term must reduce to a number; expected a reduction other than 'none'. "
            f"Received: {term.name} with reduction={term.pixel_reduction!r}"
        )
    return term


def _terms(value, where, name="terms"):
    """Validate a sum's ``terms``: a list of pixel losses or their serializations (None: the
    class's own, where it has some)."""
    if value is None:
        return None
    if isinstance(value, (str, dict, _PixelLoss)) or not hasattr(value, "__iter__"):
        raise ValueError(
            f"{where}: `{name}` must be a list of pixel losses. Received: {name}={value!r}"
        )
    terms = [_pixel_loss(term, where) for term in value]
    if not terms:
        raise ValueError(f"{where}: `{name}` must name at least one loss. Received: {name}=[]")
    return terms


def _weights(value, where, name="weights"):
    """Validate a sum's ``weights``: finite numbers (their count is the terms'), or None."""
    return None if value is None else [_checks.loss_weight(w, where) for w in value]


def _sum_reduction(value, where, name="reduction"):
    """A sum's ``reduction``: its terms reduce themselves, so only the default (``"mean"``)."""
    if value not in ("sum_over_batch_size", "mean"):
        raise ValueError(
            f"{where}: a sum adds its terms as each reduces itself; give `reduction` to the "
            'terms (e.g. PixelDiceLoss(reduction="sum")). Expected reduction='
            f"'sum_over_batch_size' (or 'mean'). Received: {name}={value!r}"
        )
    return value


TERMS = Option(
    "terms",
    REQUIRED,
    _terms,
    "The pixel losses, or their Keras serializations (as :meth:`get_config` gives them).",
)
WEIGHTS = Option(
    "weights", None, _weights, "One finite number per term, or None for all 1. Defaults to None."
)
#: The options of a sum: its terms, their weights and the only reduction it takes.
SUM = Options(
    TERMS,
    WEIGHTS,
    REDUCTION._replace(
        check=_sum_reduction,
        doc='``"sum_over_batch_size"`` (or ``"mean"``) only: each term reduces itself (give '
        'the terms their ``reduction``). Defaults to "sum_over_batch_size".',
    ),
)


@register("loss")
class PixelLossSum(_PixelLoss):
    """A weighted sum of pixel losses, each with its own options: ``Σ_k w_k·ℓ_k``.

    ``a + b``, ``w * a`` and ``a * w`` of pixel losses (``pixel_cce``, ``pixel_bce``,
    ``pixel_focal``, ``pixel_dice``, ``pixel_jaccard``, ``pixel_tversky``, ``pixel_lovasz`` and
    sums of them) build one; a sum inside a sum is flattened. It saves and reloads with every
    term's options (``.keras``, ``.h5``, tf_keras SavedModel). Under ``tf.distribute`` each term
    is global, so the sum is. On TensorFlow cross-entropy, overlap and boundary terms of one
    integer mask share one softmax (see ``_softmax_terms``); under JAX each term computes its
    own. Keras logs one ``loss``; :meth:`term_metrics` gives one metric per term to log next to
    it. The terms' values are added as they compute them (float32): the sum's ``dtype`` casts
    the total.

    Args:
        {options}

    Returns:
        Called as ``loss(y_true, y_pred, sample_weight=None)``: a float32 scalar.

    Example:
        >>> loss = PixelCategoricalCrossentropy(ignore_index=255) + 0.5 * PixelDiceLoss(
        ...     ignore_index=255)
        >>> model.compile("adam", loss=loss, metrics=loss.term_metrics())
        >>> model.fit(...)  # logs loss, pixel_categorical_crossentropy, pixel_dice_loss
    """

    declaration = SUM
    default_name = "pixel_loss_sum"

    def _store(self, options):
        where = type(self).__name__
        terms, weights = options["terms"], options["weights"]
        if terms is None:
            raise ValueError(
                f"{where}: `terms` must be a list of pixel losses. Received: terms=None"
            )
        weights = [1.0] * len(terms) if weights is None else weights
        if len(weights) != len(terms):
            raise ValueError(
                f"{where}: `weights` needs one weight per term: expected {len(terms)}, "
                f"received {len(weights)}. Received: weights={weights}"
            )
        self._pairs = [
            (weight * inner, term_loss)
            for weight, term in zip(weights, terms)
            for inner, term_loss in term.terms()
        ]

    def terms(self):
        return list(self._pairs)

    def _share(self, y_true, y_pred, sample_weight=None):
        _check_maps_with_labels(self._pairs, y_true, y_pred, self.name)
        if IS_TENSORFLOW:
            fused = _softmax_terms(self._pairs, y_true, y_pred, sample_weight, self.name)
            if fused is not None:
                return fused
        total = None
        for weight, term in self._pairs:
            with tf.name_scope(term.name):
                value = weight * term._share(
                    term_targets(term, y_true, y_pred), y_pred, sample_weight
                )
            total = value if total is None else total + value
        return total

    def call(self, y_true, y_pred):
        return self.share(y_true, y_pred)

    def _option(self, name):
        if name == "terms":
            return [keras.losses.serialize(term) for _, term in self._pairs]
        return [weight for weight, _ in self._pairs]

    def term_metrics(self):
        """One :class:`PixelLossTerm` per term, named as the term (``_2``... for repeats).

        Returns:
            A list of metrics for ``model.compile(metrics=...)``.

        Example:
            >>> loss = PixelCategoricalCrossentropy() + PixelDiceLoss()
            >>> model.compile("adam", loss=loss, metrics=loss.term_metrics())
        """
        metrics, seen = [], {}
        for _, term in self._pairs:
            seen[term.name] = seen.get(term.name, 0) + 1
            suffix = f"_{seen[term.name]}" if seen[term.name] > 1 else ""
            metrics.append(PixelLossTerm(term, name=term.name + suffix))
        return metrics


def term_targets(term, y_true, y_pred):
    """What ``term`` reads of ``y_true``: a boundary loss all of it; any other term, of a
    ``y_true`` holding a mask and its distance maps (``pixel_boundary_targets(...,
    with_labels=True)``), the mask."""
    if isinstance(term, (PixelBoundaryLoss, PixelLossSum)):
        return y_true
    parts = boundary_parts(y_true, y_pred, getattr(term, "axis", -1))
    return y_true if parts is None else parts[0]


def _check_maps_with_labels(pairs, y_true, y_pred, where):
    """A sum with a ``PixelBoundaryLoss(from_maps=True)`` and other terms needs the mask beside
    the maps: given the maps alone, the other terms would read them as dense labels."""
    terms = [term for _, term in pairs]
    from_maps = [t for t in terms if isinstance(t, PixelBoundaryLoss) and t.from_maps]
    others = [t for t in terms if not isinstance(t, PixelBoundaryLoss)]
    if not from_maps or not others or boundary_parts(y_true, y_pred, from_maps[0].axis):
        return
    raise ValueError(
        f"{where}: the term {from_maps[0].name} reads distance maps (from_maps=True) and "
        f"{others[0].name} reads labels, from the same y_true: give both, "
        "pixel_boundary_targets(mask, num_classes, ignore_index, with_labels=True) (the mask, "
        "then the maps, on the class axis). Received y_true of shape "
        f"{tuple(ops.convert_to_tensor(y_true).shape)} for predictions of shape "
        f"{tuple(y_pred.shape)}."
    )


def _add(a, b):
    """``a + b`` of pixel losses: their terms, summed."""
    if not isinstance(b, _PixelLoss):
        return NotImplemented
    pairs = a.terms() + b.terms()
    return PixelLossSum(terms=[t for _, t in pairs], weights=[w for w, _ in pairs])


def _radd(a, other):
    # sum([a, b]) starts from 0.
    if isinstance(other, numbers.Number) and not isinstance(other, bool) and other == 0:
        return a
    return NotImplemented


def _mul(a, weight):
    """``w * a`` (``a * w``): every term of ``a`` weighted ``w`` times more."""
    if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
        return NotImplemented
    weight = _checks.loss_weight(weight, type(a).__name__)
    pairs = a.terms()
    return PixelLossSum(terms=[t for _, t in pairs], weights=[weight * w for w, _ in pairs])


# The arithmetic of every pixel loss lives here, beside the sum it builds (``_base`` sits below
# this module and cannot name PixelLossSum).
_PixelLoss.__add__ = _add
_PixelLoss.__radd__ = _radd
_PixelLoss.__mul__ = _mul
_PixelLoss.__rmul__ = _mul


@register("loss", "pixel_cce_dice", "pixel_categorical_crossentropy_dice")
class PixelCategoricalCrossentropyDice(PixelLossSum):
    """``pixel_cce + pixel_dice`` (both with their defaults) by name: ``"pixel_cce_dice"``.

    For other options add the terms yourself, e.g.
    ``PixelCategoricalCrossentropy(ignore_index=255) + PixelDiceLoss(ignore_index=255)``.

    Args:
        {options}

    Example:
        >>> model.compile("adam", loss="pixel_cce_dice")
    """

    declaration = Options(
        TERMS._replace(
            default=None,
            doc="The terms, or None for ``[PixelCategoricalCrossentropy(), PixelDiceLoss()]``. "
            "Defaults to None.",
        ),
        *SUM.options[1:],
    )
    default_name = "pixel_categorical_crossentropy_dice"

    def _store(self, options):
        if options["terms"] is None:
            options = {**options, "terms": [PixelCategoricalCrossentropy(), PixelDiceLoss()]}
        super()._store(options)


@register("metric")
class PixelLossTerm(keras.metrics.Mean):
    """The value of one pixel loss (unweighted), averaged over batches as Keras averages ``loss``.

    Keras's compiled loss is one scalar: the terms of a :class:`PixelLossSum` are logged by one
    such metric each (:meth:`PixelLossSum.term_metrics`). Each computes its term again on the
    batch (a forward pass of the loss, no gradient). Under ``tf.distribute`` it logs the global
    value, as the loss does.

    Args:
        loss: A pixel loss, or its Keras serialization.
        name: Defaults to the loss's name.
        dtype: Defaults to None (float32).

    Example:
        >>> model.compile("adam", loss="pixel_cce", metrics=[PixelLossTerm(PixelDiceLoss())])
    """

    def __init__(self, loss, name=None, dtype=None):
        loss = _pixel_loss(loss, type(self).__name__)
        super().__init__(name=name or loss.name, dtype=dtype)
        self._loss = loss

    def update_state(self, y_true, y_pred, sample_weight=None):
        value = self._loss.share(term_targets(self._loss, y_true, y_pred), y_pred, sample_weight)
        if IS_TENSORFLOW:
            value = value * tf.cast(hooks.replicas(), value.dtype)
            images = tf.cast(tf.shape(y_pred)[0], value.dtype)
        else:  # the global batch already (see _backend.generic)
            images = ops.cast(ops.shape(y_pred)[0], value.dtype)
        return super().update_state(value, sample_weight=images)

    def get_config(self):
        return {**super().get_config(), "loss": keras.losses.serialize(self._loss)}


def _softmax_terms(pairs, y_true, y_pred, sample_weight, where):
    """The sum of cross-entropy, Dice/Jaccard/Tversky and boundary terms from one softmax, or
    None.

    When the terms are of two of these kinds or three (``pixel_cce`` without label smoothing, an
    overlap loss, at most one ``pixel_boundary``), all with the same ``axis`` and ``from_logits``
    and those that read the mask the same ``ignore_index`` (the overlap losses also the same
    ``per_image``), on an integer mask (alone, or before the distance maps: ``with_labels``) and
    predictions with logits, the terms share the flattened inputs, their checks and one
    ``softmax_statistics`` (``_backend.tensorflow``): each pixel's ``log p_y`` for the
    cross-entropies, the per-class sums for the overlaps and each pixel's ``Σ_c p_c·φ'_c`` for
    the boundary loss (under XLA the boundary term computes its own: measured faster there).
    The value and gradient are those of the terms added one by one, except that a pixel's
    cross-entropy stops at 87.3 (``p_y`` below 1.2e-38; its gradient does not stop).
    """
    plan = _shared_softmax_plan([term for _, term in pairs], y_true, y_pred)
    if plan is None:
        return None
    inputs = _functional.RegionInputs(plan["mask"], y_pred, plan["grouping"], sample_weight, where)
    num_classes = inputs.num_classes
    hit = tf.equal(inputs.labels[..., None], tf.range(num_classes))
    linear, boundary_weights = None, None
    # Under XLA the boundary term's own softmax measured faster than sharing (the compiler
    # shares what it can; the extra output of the shared one costs a pass): term by term there.
    if plan["boundary"] is not None and not _checks.compiling_with_xla():
        boundary = plan["boundary"]
        given = plan["parts"][1] if boundary.from_maps else None
        image = image_shape(y_pred, boundary.axis, boundary.name)
        maps, boundary_weights = boundary_maps(inputs, image, given)
        maps = weighted_maps(
            ops.reshape(maps, (-1, num_classes)), boundary.options(), boundary.name
        )
        linear = tf.reshape(maps, tf.shape(inputs.scores))
    statistics = hooks.softmax_statistics(
        inputs.scores, hit, inputs.weights, hooks.wide(inputs), linear
    )
    shared = {
        "sums": (
            statistics[0],
            hooks.label_sums(inputs.labels, inputs.weights, num_classes),
            statistics[1],
        ),
        "cross_entropy": -tf.reshape(statistics[2], [-1]),
        "boundary": None if linear is None else tf.reshape(statistics[3], [-1]),
        "boundary_weights": boundary_weights,
    }
    total = None
    for weight, term in pairs:
        with tf.name_scope(term.name):
            value = _shared_term(term, inputs, shared, y_true, y_pred, sample_weight)
        total = weight * value if total is None else total + weight * value
    return inputs.checked(total)


def _shared_softmax_plan(terms, y_true, y_pred):
    """What :func:`_softmax_terms` shares for ``terms`` (``{"mask", "grouping", "parts",
    "boundary"}``), or None where they go term by term (the conditions it lists)."""
    entropies = [t for t in terms if isinstance(t, PixelCategoricalCrossentropy)]
    overlaps = [t for t in terms if isinstance(t, _OverlapLoss)]
    boundaries = [t for t in terms if isinstance(t, PixelBoundaryLoss)]
    labelled = entropies + overlaps + [t for t in boundaries if not t.from_maps]
    if (
        sum(1 for kind in (entropies, overlaps, boundaries) if kind) < 2
        or len(entropies) + len(overlaps) + len(boundaries) != len(terms)
        or len(boundaries) > 1
        or any(t.label_smoothing for t in entropies)
        or len({(t.axis, t.from_logits) for t in terms}) != 1
        or len({t.ignore_index for t in labelled}) != 1
        or len({t.per_image for t in overlaps}) > 1
    ):
        return None
    first = terms[0]
    from_logits = (
        first.from_logits or hooks.logits_behind(y_pred, first.axis, "Softmax") is not None
    )
    parts = boundary_parts(y_true, y_pred, first.axis)
    if boundaries and boundaries[0].from_maps != (parts is not None):
        return None  # the boundary term's own error, term by term
    mask = tf.convert_to_tensor(y_true) if parts is None else parts[0]
    rank = getattr(getattr(y_pred, "shape", None), "rank", None)
    if not from_logits or rank is None or mask.shape.rank == rank:
        return None  # probabilities, or dense labels (or a size-1 class axis): term by term
    grouping = {
        "axis": first.axis,
        "from_logits": first.from_logits,
        "ignore_index": labelled[0].ignore_index,
        "per_image": overlaps[0].per_image if overlaps else False,
        "reduction": overlaps[0].pixel_reduction if overlaps else "sum_over_batch_size",
    }
    boundary = boundaries[0] if boundaries else None
    return {"mask": mask, "grouping": grouping, "parts": parts, "boundary": boundary}


def _shared_term(term, inputs, shared, y_true, y_pred, sample_weight):
    """One term's value from what :func:`_softmax_terms` computed once (``shared``)."""
    options = term.options()
    num_classes = inputs.num_classes
    if isinstance(term, _OverlapLoss):
        cw = _functional.overlap_class_weights(
            num_classes, options["classes"], options["class_weights"], term.name
        )
        return _functional.overlap_loss(
            inputs, shared["sums"], term.tversky_parameters(), options, cw
        )
    if isinstance(term, PixelBoundaryLoss) and shared["boundary"] is None:
        return term._share(term_targets(term, y_true, y_pred), y_pred, sample_weight)
    if isinstance(term, PixelBoundaryLoss):
        return _pixels.reduce(
            inputs.pixels,
            shared["boundary"],
            shared["boundary_weights"],
            sample_weight,
            options["reduction"],
        )
    cross_entropy = shared["cross_entropy"]
    cw = _pixels.class_weight_tensor(
        options["class_weights"], num_classes, cross_entropy.dtype, term.name
    )
    return sparse_cross_entropy_mean(
        inputs.pixels,
        cross_entropy,
        inputs.flat_labels,
        inputs.flat_valid,
        cw,
        options,
        sample_weight,
    )
