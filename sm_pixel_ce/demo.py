"""The demo (``sm-pixel-ce demo``): train a small U-Net with ``pixel_softmax`` + ``pixel_cce`` on
generated 7-class scenes, save it, reload it without ``custom_objects`` and score it."""

import os
import time

import numpy as np

from ._version import __version__
from .data import CLASS_NAMES, NUM_CLASSES, make_scenes
from .flavor import KERAS_FLAVOR, keras
from .scores import confusion_matrix, scores_from_confusion


def run_demo(
    images=96,
    size=64,
    epochs=6,
    batch_size=8,
    backbone="resnet18",
    seed=0,
    out="runs/demo",
    log=None,
):
    """Train, save, reload and score a U-Net on generated scenes.

    Args:
        images: Number of generated scenes; a quarter is held out. Defaults to 96.
        size: Image side in pixels, a multiple of 32. Defaults to 64.
        epochs: Training epochs. Defaults to 6.
        batch_size: Batch size. Defaults to 8.
        backbone: segmentation_models backbone. Defaults to ``"resnet18"``.
        seed: Seed of the scenes and the weights. Defaults to 0.
        out: Folder for the saved model. Defaults to ``"runs/demo"``.
        log: Callable given progress lines; Keras prints its epoch lines when set. Defaults to None.

    Returns:
        ``{"path", "per_class_iou" (None for an absent class), "miou", "pixel_accuracy",
        "seconds"}``.

    Raises:
        ValueError: ``size`` is not a multiple of 32, or the reloaded model predicts differently.

    Example:
        >>> result = run_demo(images=16, epochs=1)
        >>> result["path"]
        'runs/demo/unet_pixel_cce.keras'
    """
    if size % 32:
        raise ValueError(f"size must be a multiple of 32 for a U-Net. Received: size={size}")
    import segmentation_models as sm

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    scenes, masks = make_scenes(images, size=size, seed=seed)
    split = max(1, images // 4)
    x_val, y_val, x_train, y_train = scenes[:split], masks[:split], scenes[split:], masks[split:]
    if log:
        log(
            f"sm_pixel_ce {__version__} on {KERAS_FLAVOR}: {len(x_train)} training and "
            f"{len(x_val)} "
            f"validation scenes, {size}x{size}, {NUM_CLASSES} classes"
        )
    model = sm.Unet(
        backbone,
        encoder_weights=None,
        classes=NUM_CLASSES,
        activation="pixel_softmax",
        input_shape=(size, size, 3),
    )
    model.compile(keras.optimizers.Adam(1e-3), loss="pixel_cce")
    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=batch_size,
        verbose=2 if log else 0,
    )

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "unet_pixel_cce.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)  # no custom_objects: the names are registered
    probabilities = reloaded.predict(x_val, verbose=0)
    if not np.allclose(probabilities, model.predict(x_val, verbose=0), atol=1e-5):
        raise ValueError(
            f"the model reloaded from {path} predicts differently from the trained one."
        )
    scores = scores_from_confusion(confusion_matrix(y_val, probabilities.argmax(-1), NUM_CLASSES))
    return {
        "path": path,
        "per_class_iou": dict(zip(CLASS_NAMES, scores["per_class_iou"])),
        "miou": scores["miou"],
        "pixel_accuracy": scores["pixel_accuracy"],
        "seconds": time.perf_counter() - start,
    }
