"""The Keras ``Loss`` that Dice, Jaccard and Tversky share: their common options, validated once
and returned by ``get_config`` exactly as given to the constructor."""

from .. import _checks
from . import _functional
from ._base import _RegionLoss


class _OverlapLoss(_RegionLoss):
    """A region loss on per-class overlaps (``TP``, ``FP``, ``FN``): Dice, Jaccard, Tversky."""

    #: The loss's name when none is given: its function's name.
    default_name = None

    def __init__(
        self,
        axis=-1,
        from_logits=False,
        classes=None,
        class_weights=None,
        ignore_index=None,
        smooth=0.0,
        eps=1e-7,
        log_loss=False,
        per_image=False,
        absent_classes="zero",
        name=None,
    ):
        where = type(self).__name__
        super().__init__(name=name or self.default_name)
        self.axis = _checks.axis_argument(axis, where)
        self.from_logits = bool(from_logits)
        options = _functional.region_options(
            where,
            classes,
            class_weights,
            ignore_index,
            smooth,
            eps,
            log_loss,
            per_image,
            absent_classes,
        )
        self.classes = options["classes"]
        self.class_weights = options["class_weights"]
        self.ignore_index = options["ignore_index"]
        self.smooth = options["smooth"]
        self.eps = options["eps"]
        self.log_loss = options["log_loss"]
        self.per_image = options["per_image"]
        self.absent_classes = options["absent_classes"]

    def tversky_parameters(self):
        """``(α, β, γ)``: this loss as a Tversky loss."""
        raise NotImplementedError

    def region_options(self):
        """The options of :func:`~sm_pixel_ce.losses._functional.region_options`, as a dict."""
        config = self.get_config()
        for key in ("axis", "from_logits", "name", "alpha", "beta", "gamma"):
            config.pop(key, None)
        return config

    def get_config(self):
        return {
            "axis": self.axis,
            "from_logits": self.from_logits,
            "classes": self.classes,
            "class_weights": self.class_weights,
            "ignore_index": self.ignore_index,
            "smooth": self.smooth,
            "eps": self.eps,
            "log_loss": self.log_loss,
            "per_image": self.per_image,
            "absent_classes": self.absent_classes,
            "name": self.name,
        }
