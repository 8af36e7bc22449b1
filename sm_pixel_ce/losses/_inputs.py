"""The backend's flattening and reductions for the losses written once on ``keras.ops``
(``pixel_mcc``, ``pixel_boundary``): TensorFlow's (``losses._functional``, ``_pixels``: graph
checks, global sums and means under ``tf.distribute``) or the other backends'
(``_neutral_regions``, ``_neutral``: checks on the host, the global batch already), which take the
same arguments and give the same attributes.

* :data:`RegionInputs`: labels, predictions and pixel weights grouped ``(G, n, ...)``;
* :data:`reduce_images`: a region loss ``(G,)`` under its ``reduction``;
* :data:`reduce_pixels`: per-pixel losses ``(P,)`` under their ``reduction``;
* :func:`global_sums`: sums over every replica's pixels (the sums themselves off TensorFlow).
"""

from ..flavor import IS_TENSORFLOW

if IS_TENSORFLOW:
    from .. import _pixels
    from ._functional import RegionInputs, reduce_images

    reduce_pixels = _pixels.reduce
    global_sums = _pixels.global_sums
else:
    from .. import _neutral
    from .._neutral_regions import RegionInputs, reduce_images

    reduce_pixels = _neutral.reduce

    def global_sums(local):
        """Keras's JAX and PyTorch backends compute the loss on the global batch: ``local``."""
        return local


__all__ = ["RegionInputs", "global_sums", "reduce_images", "reduce_pixels"]
