"""CPU time of the first `fit` of a small U-Net (its train step traced and optimised) per optimizer.

Why the tests' tiny `compare` runs use plain SGD (tests/conftest.py FAST_OPTIMIZER): Keras 3's
Adam triples the train step's graph. Measured on 2 shared cores (CPU seconds, user + sys, of the
first `fit`; Unet resnet18, 32 px, batch 4, 7 classes):

    Keras 3:  sgd 3.6, sgd momentum 0.9 8.3, adam 11.0
    tf_keras: sgd 2.5, adam 5.1

    python examples/optimizer_trace.py sgd sgdm adam
    TF_USE_LEGACY_KERAS=1 python examples/optimizer_trace.py sgd adam
"""

import sys
import time

import segmentation_models as sm
import tensorflow as tf

import sm_pixel_ce  # noqa: F401  (first: registers the names, picks tf.keras for sm)
from sm_pixel_ce.flavor import keras

OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(1e-3),
    "adamw": lambda: keras.optimizers.AdamW(1e-3),
    "sgd": lambda: keras.optimizers.SGD(1e-2),
    "sgdm": lambda: keras.optimizers.SGD(1e-2, momentum=0.9),
}


def first_fit_seconds(name):
    """CPU seconds of the first `fit` of a fresh U-Net compiled with optimizer ``name``."""
    x = tf.random.uniform((4, 32, 32, 3))
    y = tf.random.uniform((4, 32, 32), maxval=7, dtype=tf.int32)
    model = sm.Unet(
        "resnet18",
        encoder_weights=None,
        classes=7,
        activation="pixel_softmax",
        input_shape=(32, 32, 3),
    )
    model.compile(OPTIMIZERS[name](), loss="pixel_cce")
    start = time.process_time()
    model.fit(x, y, epochs=1, verbose=0)
    return time.process_time() - start


if __name__ == "__main__":
    for name in sys.argv[1:] or ["sgd", "adam"]:
        print(f"{name}: first fit {first_fit_seconds(name):.2f} s of CPU")
