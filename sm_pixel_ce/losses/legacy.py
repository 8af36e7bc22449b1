"""Names that older files hold: loaded as today's losses, never built under the old name.

* ``sm_pixel_ce>PixelCceDiceLoss``: ``compare``'s ``cce-dice`` loss before it became the public
  ``pixel_cce + pixel_dice`` (it was ``pixel_cce`` + segmentation_models' ``DiceLoss()``). A model
  saved with it reloads with ``PixelCategoricalCrossentropy(ignore_index) +
  PixelDiceLoss(ignore_index)``; saved again, it is saved as that sum.
"""

from .._registry import serializable
from .cross_entropy import PixelCategoricalCrossentropy
from .dice import PixelDiceLoss


@serializable
class PixelCceDiceLoss:
    """Load-only alias: its config becomes ``pixel_cce + pixel_dice`` with the same
    ``ignore_index``.

    Example:
        >>> keras.losses.deserialize({"class_name": "sm_pixel_ce>PixelCceDiceLoss",
        ...                           "config": {"num_classes": 7, "ignore_index": 255}})
        <sm_pixel_ce.losses.sums.PixelLossSum ...>
    """

    def __init__(self, *args, **kwargs):
        raise ValueError(
            "PixelCceDiceLoss only loads older files; build the loss as "
            "sm_pixel_ce.PixelCategoricalCrossentropy(ignore_index=...) + "
            "sm_pixel_ce.PixelDiceLoss(ignore_index=...), or loss='pixel_cce_dice'. "
            f"Received: args={args}, kwargs={kwargs}"
        )

    @classmethod
    def from_config(cls, config):
        ignore_index = config.get("ignore_index")
        return PixelCategoricalCrossentropy(ignore_index=ignore_index) + PixelDiceLoss(
            ignore_index=ignore_index
        )

    def get_config(self):  # Keras registers only classes that have one; never called
        return {}
