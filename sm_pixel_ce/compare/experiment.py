"""Run the comparison: same data split, same initial weights, same batches for every variant."""

import dataclasses
import os
import time

import numpy as np

from ..flavor import keras
from .training import predict, train_variant
from .variants import build_model, probabilities_of


@dataclasses.dataclass
class Settings:
    """What every variant is trained with.

    Attributes:
        variants: Variant names, in report order.
        classes: Number of classes C.
        size: Input side in pixels (a multiple of 32).
        ignore_index: Label value not counted, or None.
        arch: segmentation_models architecture name.
        backbone: segmentation_models backbone name.
        epochs, batch_size, lr: Training schedule (Adam).
        seed: First seed; run ``k`` of ``seeds`` uses ``seed + k``.
        seeds: Number of repeated runs.
    """

    variants: tuple
    classes: int
    size: int
    ignore_index: int = None
    arch: str = "Unet"
    backbone: str = "resnet18"
    epochs: int = 12
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    seeds: int = 1


@dataclasses.dataclass
class Split:
    """Training and validation arrays: float32 images ``(N, S, S, 3)``, integer masks
    ``(N, S, S)``."""

    train_images: np.ndarray
    train_masks: np.ndarray
    val_images: np.ndarray
    val_masks: np.ndarray


def split(images, masks, val_fraction, seed):
    """Shuffle with ``seed`` and hold out ``val_fraction`` of the images (at least one each side).

    Args:
        images: ``(N, S, S, 3)`` images.
        masks: ``(N, S, S)`` masks.
        val_fraction: Fraction held out, in (0, 1).
        seed: Seed of the shuffle.

    Returns:
        A :class:`Split`.
    """
    count = len(images)
    if count < 2:
        raise ValueError(
            f"Need at least 2 images to split into training and validation. Received {count}."
        )
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1). Received: val_fraction={val_fraction}")
    order = np.random.default_rng(seed).permutation(count)
    held = min(max(1, int(round(count * val_fraction))), count - 1)
    val, train = order[:held], order[held:]
    return Split(images[train], masks[train], images[val], masks[val])


def run_comparison(data, settings, out_dir, log=print):
    """Train every variant ``settings.seeds`` times, save and reload each model, and score them.

    Models of the first run are saved as ``out_dir/model_<variant>.keras`` and loaded back with
    ``keras.models.load_model(path)`` (no ``custom_objects``); the largest difference between the
    reloaded and the trained model's validation outputs is recorded as ``reload_max_abs_diff``.

    Args:
        data: A :class:`Split`.
        settings: :class:`Settings`.
        out_dir: Folder for the models.
        log: Function printing one line. Defaults to print.

    Returns:
        ``(runs, predictions)``: ``runs[variant]`` is the list of per-seed result dicts;
        ``predictions[variant]`` the first run's validation probabilities ``(N, S, S, C)``.
    """
    os.makedirs(out_dir, exist_ok=True)
    runs = {variant: [] for variant in settings.variants}
    predictions = {}
    for k in range(settings.seeds):
        seed = settings.seed + k
        keras.utils.set_random_seed(seed)
        initial = build_model(
            "cce", settings.arch, settings.backbone, settings.classes, settings.size
        )
        initial_weights = initial.get_weights()
        del initial
        keras.backend.clear_session()
        for variant in settings.variants:
            log(
                f"[{variant}] seed {seed}: training {settings.epochs} epochs on "
                f"{len(data.train_images)} images"
            )
            result, model, probabilities = train_variant(
                variant, data, settings, initial_weights, seed, log
            )
            if k == 0:
                result.update(
                    _save_and_reload(variant, model, data, settings, out_dir, probabilities)
                )
                predictions[variant] = probabilities
            runs[variant].append(result)
            log(
                f"[{variant}] mIoU {result['miou']:.3f}  "
                f"pixel accuracy {result['pixel_accuracy']:.3f}"
                f"  keras accuracy {result['keras_accuracy']:.3f}  ({result['seconds']:.0f} s)"
            )
            del model
            keras.backend.clear_session()
    return runs, predictions


def _save_and_reload(variant, model, data, settings, out_dir, probabilities):
    path = os.path.join(out_dir, f"model_{variant}.keras")
    # The file is for prediction and reloading: it keeps the loss with its options, but a
    # stateless SGD instead of Adam, whose two slots per weight would triple its size (and an
    # unbuilt Adam would warn on every load that its slots are missing).
    model.compile(
        optimizer=keras.optimizers.SGD(settings.lr), loss=model.loss, metrics=["accuracy"]
    )
    model.save(path)
    start = time.perf_counter()
    reloaded = keras.models.load_model(path)
    outputs = predict(reloaded, data.val_images)
    again = probabilities_of(variant, outputs, settings.size)
    return {
        "model_path": path,
        "reload_max_abs_diff": float(np.max(np.abs(again - probabilities))),
        "reload_seconds": float(time.perf_counter() - start),
    }
