"""``export``: a trained Keras model to TFLite, ONNX or a TF Serving SavedModel, then checked."""

import os
import tempfile

import numpy as np

from .._messages import first_line
from ..data.scenes import make_scenes
from ..flavor import KERAS_FLAVOR, keras
from . import check as checks
from . import child, convert, tracing
from .calibration import CalibrationOptions, calibration_reader, read_calibration
from .errors import ModelFileError
from .report import ExportReport, directory_bytes

#: Largest |probability difference| a float32 export may have from Keras.
DEFAULT_TOLERANCE = 1e-4
#: Generated sample images for the check when there is no calibration folder.
GENERATED_SAMPLES = 4
#: At most this many calibration images are checked (all of them calibrate int8).
CHECKED_SAMPLES = 16


def export(
    model_or_path,
    out,
    format="tflite",
    size=None,
    quantize=None,
    calibration=None,
    check=True,
    int8_io=False,
    tolerance=None,
    opset=convert.ONNX_OPSET,
    isolate=None,
    **reading,
):
    """Export a Keras model to TFLite, ONNX or a TF Serving SavedModel, and check the file.

    The model is traced at one input signature (batch size free): at ``size`` when given, else at
    the model's own size (ONNX and SavedModel keep an unknown H and W unknown). The file is then
    loaded in its own runtime (``ai_edge_litert``, ``onnxruntime``, or ``tf.saved_model.load`` in a
    process without sm_pixel_ce) and run on sample inputs (the calibration images if given, else
    generated scenes) next to Keras ``predict``.

    Args:
        model_or_path: A Keras model, or a ``.keras``/``.h5``/SavedModel path that
            :func:`sm_pixel_ce.load_model` reads.
        out: The file to write (a folder for ``"saved_model"``).
        format: ``"tflite"``, ``"onnx"`` or ``"saved_model"``. Defaults to ``"tflite"``.
        size: ``H``, ``(H, W)`` or ``"H,W"``: trace a model built with ``None`` sizes at this
            size (the architecture's size rule applies). Required for TFLite when the model has
            ``None`` sizes. Defaults to None.
        quantize: None (float32), ``"float16"``, ``"dynamic"`` or ``"int8"`` (full integer,
            needs ``calibration``); not for ``"saved_model"``. Defaults to None.
        calibration: A folder of images, or of ``images/`` (and ``masks/`` to report the mIoU
            change), resized to the export size as ``compare --data`` does. Defaults to None.
        check: Run the check. Defaults to True.
        int8_io: TFLite int8 only: uint8 input and output instead of float32. Defaults to False.
        tolerance: Largest |probability difference| allowed. Defaults to None: 1e-4 for float32
            exports, nothing enforced for quantized ones (their agreement is reported).
        opset: The ONNX opset. Defaults to 17.
        isolate: Convert in a child process, whose memory returns to the system when it ends
            (see :mod:`sm_pixel_ce.exporting.child`): True, False, or None for models of more
            than ``child.CHILD_BYTES`` of weights (a 57 MB U-Net's ONNX export then peaks at
            1.8 GB instead of 5.2 GB; the child costs ~10 s of CPU time). Defaults to None.
        **reading: How ``calibration`` is read: ``masks``, ``mask_pattern``, ``bands``,
            ``scale``, ``no_exif`` (or ``exif``), as ``evaluate`` reads a folder (see
            :class:`~sm_pixel_ce.exporting.calibration.CalibrationOptions`).

    Returns:
        An :class:`ExportReport`; ``report.passed`` is False when the check found a difference
        beyond the tolerance.

    Raises:
        ValueError: An unknown format or quantization, int8 without calibration, a bad reading
            option (or one without calibration), a size the
            architecture cannot take, a TFLite export of a ``None``-size model without ``size``,
            or (``DynamicSizeError``) a model that cannot be traced with unknown H and W.
        ModelFileError: The model file is missing or unreadable.
        DataError: The calibration folder is missing, empty or unreadable.
        MissingRuntimeError: A converter or runtime of the ``[export]`` extra is not installed.

    Example:
        >>> report = sm_pixel_ce.export("unet.keras", "unet.tflite", size=256)
        >>> report.max_difference < 1e-4
        True
    """
    calibration = CalibrationOptions(folder=calibration, **reading)
    _check_options(format, quantize, calibration.folder, int8_io, tolerance)
    model = _model(model_or_path)
    from ..saving import data_contract

    contract = data_contract(model)
    height, width = tracing.export_size(model, tracing.parse_size(size), format)
    sample_height, sample_width = _sample_size(height, width, model, contract)
    images, masks, source = _samples(model, calibration, sample_height, sample_width, contract)
    out = os.fspath(out)
    settings = dict(format=format, quantize=quantize, int8_io=int8_io, opset=opset)
    settings.update(height=height, width=width)
    if isolate is None:
        isolate = child.weight_bytes(model) > child.CHILD_BYTES
    _write(model, model_or_path, out, images, contract, isolate, **settings)
    channels = tracing.model_input(model)[2]
    report = ExportReport(
        format=format,
        quantize=quantize,
        path=out,
        file_bytes=directory_bytes(out),
        input_shape=[None, height, width, channels],
        input_dtype="uint8" if int8_io else "float32",
        flavor=KERAS_FLAVOR,
    )
    if check:
        if tolerance is None and quantize is None:
            tolerance = DEFAULT_TOLERANCE
        _check(report, model, images, masks, source, tolerance)
    return report


def _sample_size(height, width, model, contract):
    """The ``(height, width)`` of the check images: the traced size, else the size the model
    was trained at (its data contract's), else :func:`~.tracing.sample_size`'s."""
    if contract is not None and contract.size is not None and None in (height, width):
        return (height or contract.size[0], width or contract.size[1])
    return tracing.sample_size(height, width, model)


def _samples(model, calibration, height, width, contract):
    """``(images, masks or None, where they come from)``: the calibration images, read as the
    model's data contract says, else generated ones, at ``height`` x ``width``."""
    if calibration.folder is not None:
        reader, scale = calibration_reader(calibration, contract)
        images, masks = read_calibration(
            calibration.folder, height, width, reader=reader, scale=scale
        )
        how = "" if contract is None else ", read as the model's data contract says"
        return images, masks, f"calibration images ({height}x{width}{how})"
    return _generated(height, width, model), None, f"generated images ({height}x{width})"


def _write(model, model_or_path, out, images, contract, isolate, **settings):
    """Write ``model``'s export to ``out``: with ``isolate``, in a child process (:mod:`.child`)
    from ``model_or_path``'s file (a temporary one for a model in memory)."""
    if not isolate:
        convert.write(model, out, images=images, contract=contract, **settings)
        return
    if isinstance(model_or_path, (str, os.PathLike)):
        child.convert_in_child(model_or_path, out, settings, images)
        return
    from ..saving import save_model

    with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_export_") as tmp:
        path = os.path.join(tmp, "model.keras")
        save_model(model, path, contract)
        child.convert_in_child(path, out, settings, images)


def _check(report, model, images, masks, source, tolerance):
    """Run the written file on (at most :data:`CHECKED_SAMPLES` of) ``images`` beside Keras and
    fill in ``report``'s check: differences, agreement, speed, and the mIoU change with
    ``masks``."""
    images = images[:CHECKED_SAMPLES]
    masks = None if masks is None else masks[:CHECKED_SAMPLES]
    reference, keras_seconds = checks.keras_predict(model, images)
    outputs, seconds, runtime = checks.RUNNERS[report.format](report.path, images)
    difference, agreement = checks.agreement(reference, outputs)
    report.checked = True
    report.runtime = runtime
    report.samples = len(images)
    report.sample_source = source
    report.max_difference = difference
    report.argmax_agreement = agreement
    report.tolerance = tolerance
    report.passed = None if tolerance is None else bool(difference <= tolerance)
    report.runtime_ms_per_image = 1000 * seconds
    report.keras_ms_per_image = 1000 * keras_seconds
    if masks is not None:
        report.miou_keras = checks.mean_iou(reference, masks)
        report.miou_export = checks.mean_iou(outputs, masks)


def _check_options(format, quantize, calibration, int8_io, tolerance):
    if format not in convert.FORMATS:
        raise ValueError(
            f"unknown export format. Expected one of {list(convert.FORMATS)}. "
            f"Received: format={format!r}"
        )
    if quantize is not None and quantize not in convert.QUANTIZATIONS:
        raise ValueError(
            f"unknown quantization. Expected None or one of {list(convert.QUANTIZATIONS)}. "
            f"Received: quantize={quantize!r}"
        )
    if quantize is not None and format == "saved_model":
        raise ValueError(
            "a SavedModel is exported in float32; quantize applies to 'tflite' and 'onnx'. "
            f"Received: format='saved_model', quantize={quantize!r}"
        )
    if quantize == "int8" and calibration is None:
        raise ValueError(
            "int8 quantization calibrates on sample images: pass --calibration DIR (a folder of "
            "images, or one with images/). Received: calibration=None"
        )
    if int8_io and not (format == "tflite" and quantize == "int8"):
        raise ValueError(
            "uint8 input and output (--int8-io) are for TFLite int8 exports. "
            f"Received: format={format!r}, quantize={quantize!r}, int8_io=True"
        )
    if tolerance is not None and not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0. Received: tolerance={tolerance!r}")


def _model(model_or_path):
    if isinstance(model_or_path, keras.Model):
        return model_or_path
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise ValueError(
            "export takes a Keras model or the path of a saved one. "
            f"Received: model_or_path of type {type(model_or_path).__name__}"
        )
    from ..saving import load_model, model_file_error

    try:
        return load_model(model_or_path, compile=False)
    except ModelFileError:
        raise
    except (OSError, ValueError) as error:
        found = f"a file Keras cannot load ({first_line(error).rstrip('.')})"
        raise model_file_error(model_or_path, found) from None


def _generated(height, width, model):
    """Generated scenes (shapes on textured backgrounds), cropped to ``height`` x ``width``."""
    channels = tracing.model_input(model)[2]
    images, _ = make_scenes(GENERATED_SAMPLES, max(height, width), seed=0)
    images = images[:, :height, :width]
    if channels != 3:
        images = np.repeat(images.mean(axis=-1, keepdims=True), channels, axis=-1)
    return np.ascontiguousarray(images, np.float32)
