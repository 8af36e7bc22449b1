"""Converters: a traced serving function to a TFLite flatbuffer, an ONNX model or a SavedModel.

* TFLite: the serving function with its variables frozen into constants, through
  ``tf.lite.TFLiteConverter.from_concrete_functions``. Frozen, it converts the same in Keras 3 and
  tf_keras (unfrozen, and through ``from_saved_model``, Keras 3's weights were left out of the
  file, 128 KB for a 57 MB U-Net, which computed NaN; TensorFlow 2.21).
* ONNX: ``tf2onnx.convert.from_function``; quantized with ``onnxruntime.quantization``.
* SavedModel: ``tf.saved_model.save`` of a bare ``tf.Module`` holding the weights and the
  ``serving_default`` signature, so TF Serving (or ``tf.saved_model.load``) needs neither
  sm_pixel_ce nor segmentation_models, nor any Keras object.

Each converter takes the source model's data contract and writes it into its file
(:mod:`.metadata`), so that the exported file alone tells how to read data for it.
"""

import contextlib
import logging
import os
import tempfile

import numpy as np
import tensorflow as tf

from ..flavor import IS_KERAS_3
from . import metadata, tracing
from .calibration import representative_dataset
from .errors import require

FORMATS = ("tflite", "onnx", "saved_model")
QUANTIZATIONS = ("float16", "dynamic", "int8")
#: The ONNX opset written (onnxruntime 1.17+ runs it).
ONNX_OPSET = 17


def write(model, out, format, quantize, images, int8_io, opset, height, width, contract):
    """Trace ``model`` at ``height`` x ``width`` and write it to ``out`` in ``format``, with the
    model's data ``contract`` (in this process; see :mod:`.child` for large models).

    Args:
        model: The Keras model.
        out: The file to write (a folder for ``"saved_model"``).
        format: One of :data:`FORMATS`.
        quantize: None or one of :data:`QUANTIZATIONS`.
        images: float32 ``(N, H, W, C)`` calibration images for ``"int8"``, or None.
        int8_io: TFLite int8: uint8 input and output.
        opset: The ONNX opset.
        height: The traced height, or None (unknown; ONNX and SavedModel).
        width: The traced width, or None.
        contract: The model's data contract, or None.
    """
    serve = tracing.serving_function(model, height, width)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if format == "tflite":
        data = to_tflite(serve, quantize, images, int8_io, contract)
        _write(out, data)
    elif format == "onnx":
        to_onnx(serve, out, quantize, images, opset, contract)
    else:
        to_saved_model(model, serve, out, contract)


def _frozen(serve):
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(serve.get_concrete_function())


def to_tflite(serve, quantize=None, calibration_images=None, int8_io=False, contract=None):
    """Convert a serving function (one fixed-size input) to a TFLite flatbuffer.

    Args:
        serve: A ``tf.function`` with one input signature (from ``tracing.serving_function``).
        quantize: None (float32), ``"float16"``, ``"dynamic"`` (int8 weights) or ``"int8"`` (full
            integer, calibrated on ``calibration_images``). Defaults to None.
        calibration_images: float32 ``(N, H, W, C)`` for ``"int8"``. Defaults to None.
        int8_io: With ``"int8"``, take uint8 input and give uint8 output. Defaults to False.
        contract: The model's :class:`~sm_pixel_ce.data.contract.DataContract`, written as a
            metadata entry; None for none. Defaults to None.

    Returns:
        The ``.tflite`` file's bytes.
    """
    converter = tf.lite.TFLiteConverter.from_concrete_functions([_frozen(serve)])
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.representative_dataset = representative_dataset(calibration_images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.uint8
    data = converter.convert()
    return data if contract is None else metadata.with_tflite_metadata(data, contract)


class _CalibrationReader:
    """onnxruntime's CalibrationDataReader over an array of images, one at a time."""

    def __init__(self, input_name, images):
        self._items = iter([{input_name: image[None].astype(np.float32)} for image in images])

    def get_next(self):
        return next(self._items, None)


def to_onnx(serve, out, quantize=None, calibration_images=None, opset=ONNX_OPSET, contract=None):
    """Convert a serving function to an ONNX model file.

    Args:
        serve: A ``tf.function`` with one input signature; unknown H and W stay dynamic.
        out: The ``.onnx`` path to write.
        quantize: None (float32), ``"float16"`` (float16 weights and compute, float32 input and
            output), ``"dynamic"`` (int8 weights, onnxruntime's dynamic quantization) or
            ``"int8"`` (QDQ static quantization calibrated on ``calibration_images``).
            Defaults to None.
        calibration_images: float32 ``(N, H, W, C)`` for ``"int8"``. Defaults to None.
        opset: The ONNX opset. Defaults to ``ONNX_OPSET``.
        contract: The model's :class:`~sm_pixel_ce.data.contract.DataContract`, written to the
            file's ``metadata_props``; None for none. Defaults to None.

    Returns:
        ``out``.
    """
    _to_onnx(serve, out, quantize, calibration_images, opset)
    if contract is not None:
        metadata.write_onnx(out, contract)
    return out


def _to_onnx(serve, out, quantize, calibration_images, opset):
    tf2onnx = require("tf2onnx", "ONNX export")
    model_proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=serve.input_signature, opset=opset
    )
    if quantize is None:
        _write(out, model_proto.SerializeToString())
        return out
    if quantize == "float16":
        require("onnxruntime", "ONNX float16 export")
        from onnxruntime.transformers.float16 import convert_float_to_float16

        _write(out, convert_float_to_float16(model_proto, keep_io_types=True).SerializeToString())
        return out
    quantization = require("onnxruntime.quantization", "ONNX quantization")
    with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_onnx_") as tmp, _root_log_errors_only():
        float_path = os.path.join(tmp, "float.onnx")
        _write(float_path, model_proto.SerializeToString())
        if quantize == "dynamic":
            quantization.quantize_dynamic(float_path, out, weight_type=quantization.QuantType.QInt8)
        else:
            input_name = model_proto.graph.input[0].name
            quantization.quantize_static(
                float_path,
                out,
                _CalibrationReader(input_name, calibration_images),
                quant_format=quantization.QuantFormat.QDQ,
                activation_type=quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8,
            )
    return out


def to_saved_model(model, serve, out, contract=None):
    """Write a TF Serving SavedModel whose ``serving_default`` signature is ``serve``.

    Only the weights and the traced graph are saved (no Keras objects), so loading it needs
    TensorFlow alone.

    Args:
        model: The Keras model whose weights ``serve`` reads.
        serve: A ``tf.function`` with one input signature.
        out: The SavedModel folder to write.
        contract: The model's :class:`~sm_pixel_ce.data.contract.DataContract`, written to
            ``assets/``; None for none. Defaults to None.

    Returns:
        ``out``.
    """
    root = tf.Module()
    # Keras 3 wraps each tf.Variable (its .value); tf_keras's variables are tf.Variables.
    root.weights = [v.value if IS_KERAS_3 else v for v in model.variables]
    root.serve = serve
    tf.saved_model.save(root, out, signatures={"serving_default": serve.get_concrete_function()})
    if contract is not None:
        metadata.write_saved_model(out, contract)
    return out


@contextlib.contextmanager
def _root_log_errors_only():
    """onnxruntime's quantizer logs advice ("consider pre-processing") on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
