"""What only one Keras backend can do, behind one small module per backend, chosen once at import.

The losses and metrics are written once on ``keras.ops`` (``_pixels`` and the loss modules); they
call ``hooks.<name>`` where a backend has its own way (examples/backend_rules.md lists them):

* :mod:`.tensorflow`: TensorFlow's fused cross-entropy kernels, graph assertions (and XLA's
  dropped ones), ``tf.distribute``'s all-reduce and all-gather, the logits behind a softmax
  found on the tensor, the bit search of hard-pixel mining;
* :mod:`.generic` (JAX, PyTorch): the same math from ``keras.ops``, checks run eagerly or on the
  host (``jax.debug.callback``), the logits behind a softmax in a side table, sorts.
"""

from ..flavor import IS_TENSORFLOW

if IS_TENSORFLOW:
    from . import tensorflow as hooks
else:
    from . import generic as hooks

__all__ = ["hooks"]
