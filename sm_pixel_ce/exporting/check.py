"""The check after every export: run the file in its own runtime, compare with Keras ``predict``.

* TFLite: ``ai_edge_litert`` (``tf.lite.Interpreter`` when it is not installed);
* ONNX: ``onnxruntime`` (CPU);
* SavedModel: ``tf.saved_model.load`` in a fresh process that imports neither sm_pixel_ce nor
  segmentation_models.

Each runtime runs the whole sample batch per call; latency is the median call time (after one
warm-up call) divided by the number of images, as for Keras ``predict`` on the same batch.
"""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from ..scores import confusion_matrix, scores_from_confusion

#: Timed calls per runtime (after one warm-up call).
REPEATS = 5


def _median_per_image(seconds, count):
    return float(np.median(seconds)) / count


def keras_predict(model, images, repeats=REPEATS):
    """Keras ``predict`` on ``images`` (one batch): ``(outputs, seconds per image)``."""
    return _timed(lambda x: model.predict(x, batch_size=len(x), verbose=0), images, repeats)


def _timed(call, images, repeats):
    """``(outputs of one warm-up call, median seconds per image)`` of ``call(images)``."""
    outputs = call(images)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(images)
        seconds.append(time.perf_counter() - start)
    return np.asarray(outputs, np.float32), _median_per_image(seconds, len(images))


def run_tflite(path, images, repeats=REPEATS):
    """Run a ``.tflite`` file on ``images`` (:class:`~sm_pixel_ce.inference.predictor.
    TFLiteSession`, the session ``predict`` and ``evaluate`` use).

    uint8 input and output (``int8_io``) are quantized and dequantized with the file's own scale
    and zero point, so the outputs compare with Keras's probabilities (inside the timed call).

    Returns:
        ``(outputs, seconds per image, runtime name)``.
    """
    from ..inference.predictor import TFLiteSession

    session = TFLiteSession(path)
    return (*_timed(session, images, repeats), session.runtime)


def run_onnx(path, images, repeats=REPEATS):
    """Run a ``.onnx`` file on ``images`` with onnxruntime's CPU provider
    (:class:`~sm_pixel_ce.inference.predictor.OnnxSession`).

    Returns:
        ``(outputs, seconds per image, runtime name)``.
    """
    from ..inference.predictor import OnnxSession

    return (*_timed(OnnxSession(path), images, repeats), "onnxruntime")


def run_saved_model(path, images, repeats=REPEATS):
    """Run a SavedModel's ``serving_default`` in a fresh process with TensorFlow alone.

    Returns:
        ``(outputs, seconds per image, runtime name)``.

    Raises:
        RuntimeError: The process failed, or it imported sm_pixel_ce or segmentation_models.
    """
    source_file = os.path.join(os.path.dirname(__file__), "_serve_check.py")
    with open(source_file) as handle:
        source = handle.read()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_check_") as tmp:
        inputs, outputs = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(inputs, images=images)
        process = subprocess.run(
            [sys.executable, "-c", source, os.path.abspath(path), inputs, outputs, str(repeats)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
        )
        if process.returncode != 0 or not os.path.exists(outputs):
            lines = [line for line in process.stderr.splitlines() if line.strip()]
            raise RuntimeError(
                "tf.saved_model.load could not run the SavedModel in a fresh process: "
                + (lines[-1] if lines else f"exit status {process.returncode}")
            )
        result = np.load(outputs)
        if result["loaded"].size:
            raise RuntimeError(
                f"the SavedModel needed {list(result['loaded'])} to load; it must need "
                "TensorFlow alone"
            )
        return (
            np.asarray(result["outputs"], np.float32),
            _median_per_image(result["seconds"], len(images)),
            "tf.saved_model.load",
        )


RUNNERS = {"tflite": run_tflite, "onnx": run_onnx, "saved_model": run_saved_model}


def labels(probabilities):
    """Per-pixel classes: argmax over the class axis, or ``> 0.5`` for one channel."""
    if probabilities.shape[-1] == 1:
        return (probabilities[..., 0] > 0.5).astype(np.int64)
    return np.argmax(probabilities, axis=-1)


def agreement(reference, outputs):
    """``(largest |difference|, fraction of pixels whose class agrees)`` of two outputs.

    Raises:
        ValueError: The shapes differ.
    """
    if reference.shape != outputs.shape:
        raise ValueError(
            f"the exported model's output shape differs from Keras's. Expected: {reference.shape}."
            f" Received: {outputs.shape}"
        )
    difference = float(np.max(np.abs(reference.astype(np.float64) - outputs)))
    return difference, float(np.mean(labels(reference) == labels(outputs)))


def mean_iou(probabilities, masks):
    """Mean IoU of predicted classes against integer ``masks``, by :mod:`sm_pixel_ce.scores`.

    Mask values outside the model's classes (e.g. 255 borders) are not counted; the mean is over
    the classes in the counted masks or predictions.

    Args:
        probabilities: ``(N, H, W, C)`` outputs (one channel: ``> 0.5`` is class 1).
        masks: ``(N, H, W)`` integer class indices.

    Returns:
        A float, or None when no class is present (no counted pixel).
    """
    classes = max(2, probabilities.shape[-1])
    masks = np.asarray(masks, np.int64)
    # Every value that is not a class becomes one ignored value, so that none is counted.
    masks = np.where((masks >= 0) & (masks < classes), masks, classes)
    matrix = confusion_matrix(masks, labels(probabilities), classes, ignore_index=classes)
    return scores_from_confusion(matrix)["miou"]
