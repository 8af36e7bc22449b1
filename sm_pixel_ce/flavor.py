"""Which Keras we run on, and what segmentation_models needs to import cleanly.

segmentation_models reads ``SM_FRAMEWORK`` and TensorFlow reads ``TF_USE_LEGACY_KERAS`` once, at
import time, so the flavour is fixed for the life of the process:

* Keras 3 (TensorFlow's default ``tf.keras`` since 2.16, the same objects as ``import keras``);
* tf_keras (``TF_USE_LEGACY_KERAS=1``), the Keras 2 line.

Everything in sm_pixel_ce builds on ``flavor.keras``, the ``tf.keras`` that segmentation_models
itself uses when ``SM_FRAMEWORK=tf.keras``. Keras 3 may run on another backend
(``KERAS_BACKEND=jax`` or ``torch``): ``BACKEND`` names it, and the objects then take their
hooks (see ``_backend``).
"""

import os
import sys

# segmentation_models' other choice, "keras", fails on Keras 3 (no keras.utils.generic_utils);
# tf.keras is the framework that works in both flavours. A user's explicit choice is kept.
os.environ.setdefault("SM_FRAMEWORK", "tf.keras")

import tensorflow as tf  # noqa: E402

keras = tf.keras

#: "keras3" or "tf_keras": the flavour this process runs on.
KERAS_FLAVOR = "tf_keras" if keras.layers.Layer.__module__.startswith("tf_keras") else "keras3"
IS_KERAS_3 = KERAS_FLAVOR == "keras3"

#: The Keras backend: "tensorflow" (always so in tf_keras), or "jax" / "torch" with KERAS_BACKEND.
BACKEND = keras.backend.backend()
IS_TENSORFLOW = BACKEND == "tensorflow"

#: The segmentation_models framework that works with this process's Keras.
SM_FRAMEWORK = "tf.keras"


def check_sm_framework():
    """Raise a clear error when segmentation_models is (or would be) on a framework that cannot
    work.

    segmentation_models' ``"keras"`` framework builds with standalone Keras, which is Keras 3
    here: it fails to import (``keras.utils.generic_utils``) and, in a tf_keras process, would mix
    two Kerases in one model. Only ``"tf.keras"`` works, in both flavours.

    Raises:
        ImportError: ``SM_FRAMEWORK`` names another framework, or segmentation_models was already
            imported on one.
    """
    sm = sys.modules.get("segmentation_models")
    framework = getattr(sm, "framework", lambda: None)() if sm is not None else None
    if framework is not None and framework != SM_FRAMEWORK:
        raise ImportError(
            f"segmentation_models was imported on the {framework!r} framework, which cannot work "
            f"with {KERAS_FLAVOR}; sm_pixel_ce needs {SM_FRAMEWORK!r}. Received: "
            f"sm.framework()={framework!r}. Fix: call sm.set_framework({SM_FRAMEWORK!r}) before "
            f"building models, or import sm_pixel_ce before segmentation_models (it chooses "
            f"{SM_FRAMEWORK!r} when SM_FRAMEWORK is unset)."
        )
    chosen = os.environ.get("SM_FRAMEWORK")
    if sm is None and (chosen or "").lower() != SM_FRAMEWORK:
        raise ImportError(
            f"SM_FRAMEWORK={chosen!r} cannot work with {KERAS_FLAVOR}: segmentation_models' "
            f"'keras' framework needs Keras 2 as standalone `keras`. Received: "
            f"SM_FRAMEWORK={chosen!r}. Fix: unset SM_FRAMEWORK (sm_pixel_ce then chooses "
            f"{SM_FRAMEWORK!r}) or set SM_FRAMEWORK={SM_FRAMEWORK}."
        )
