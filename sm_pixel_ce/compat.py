"""Which Keras we run on, and what segmentation_models needs to import cleanly.

segmentation_models reads ``SM_FRAMEWORK`` and TensorFlow reads ``TF_USE_LEGACY_KERAS`` once, at
import time, so the flavour is fixed for the life of the process:

* Keras 3 (TensorFlow's default ``tf.keras`` since 2.16, the same objects as ``import keras``);
* tf_keras (``TF_USE_LEGACY_KERAS=1``), the Keras 2 line.

Everything in sm_pixel_ce builds on ``compat.keras``, the ``tf.keras`` that segmentation_models
itself uses when ``SM_FRAMEWORK=tf.keras``.
"""

import os

# segmentation_models' other choice, "keras", fails on Keras 3 (no keras.utils.generic_utils);
# tf.keras is the framework that works in both flavours. A user's explicit choice is kept.
os.environ.setdefault("SM_FRAMEWORK", "tf.keras")

import tensorflow as tf  # noqa: E402

keras = tf.keras

#: "keras3" or "tf_keras": the flavour this process runs on.
KERAS_FLAVOR = "tf_keras" if keras.layers.Layer.__module__.startswith("tf_keras") else "keras3"
IS_KERAS_3 = KERAS_FLAVOR == "keras3"
