"""One interface to a trained model in any runtime: :class:`Predictor`, made by
:func:`load_predictor` from a Keras model, a ``.keras``/``.h5`` file, a SavedModel folder, a
``.tflite`` or a ``.onnx`` file.

A predictor maps float32 ``(N, H, W, C)`` images, as :class:`sm_pixel_ce.data.FolderReader`
reads them, to float32 ``(N, H, W, K)`` probabilities, and says what sizes it takes
(``fixed_size``, ``multiple``), so that :func:`sm_pixel_ce.inference.tiling.predict_image`
needs to know nothing about the runtime.

* Keras: one ``tf.function`` whose input signature leaves the batch (and a flexible model's H
  and W) unknown, so tiles, whole images and a last short batch all run one trace. Measured on
  2 cores (Unet resnet18, 4 tiles of 512 px): as fast as ``predict_on_batch`` in Keras 3
  (0.45 s), faster in tf_keras (0.55-0.8 s against 1.3-1.8 s), and 0.2 s faster per call than
  the eager ``model(x, training=False)``.
* ``.tflite``: :class:`TFLiteSession` (``ai_edge_litert``, else ``tf.lite.Interpreter``); the
  batch is resized when it changes; uint8 input and output are (de)quantized with the file's
  own scale and zero point.
* ``.onnx``: :class:`OnnxSession` (onnxruntime, CPU); a dimension named by a string or None is
  dynamic.
* A TF Serving SavedModel written by ``sm_pixel_ce.export``: its ``serving_default``
  signature, with TensorFlow alone.
"""

import os

import numpy as np
import tensorflow as tf

from .._messages import first_line
from ..exporting.errors import MissingRuntimeError, ModelFileError, require
from ..flavor import keras
from ..input_sizes import size_requirement

#: Side multiple of a flexible model whose architecture is unknown (segmentation_models' stride).
DEFAULT_MULTIPLE = 32
#: What :func:`load_predictor` reads, for messages.
FORMATS = "a Keras model (.keras, .h5 or a SavedModel folder), a .tflite or a .onnx file"
#: Activation names -> what they make of the last axis.
_ACTIVATIONS = {"pixel_softmax": "softmax", "softmax": "softmax", "sigmoid": "sigmoid"}


class Predictor:
    """A model that maps float32 ``(N, H, W, C_in)`` images to float32 ``(N, H, W, K)``
    probabilities, in whichever runtime holds it.

    ``probabilities = predictor(images)`` is one call of the runtime; an output of shape
    ``(N, H*W, K)`` (``compare``'s ``reshape`` variant) is reshaped back to ``(N, H, W, K)``.

    Args:
        run: ``run(images) -> outputs``: one call of the runtime on float32 ``(N, H, W, C)``.
        kind: ``"keras"``, ``"tflite"``, ``"onnx"`` or ``"saved_model"``.
        path: The file it was loaded from, or None for a model object.
        channels: Input channels ``C_in``.
        fixed_size: ``(H, W)`` when the input size is fixed, else None.
        num_classes: ``K``; None to learn it with one call (on zeros of the smallest size the
            model takes). Defaults to None.
        multiple: The side multiple a flexible model needs. Defaults to 32.
        activation: ``"softmax"``, ``"sigmoid"`` or ``"unknown"``: the model's last activation.
            Defaults to ``"unknown"``.

    Attributes:
        kind, path, channels, fixed_size, num_classes, multiple, activation: As above.
        contract: The model's :class:`~sm_pixel_ce.data.contract.DataContract` (how its
            training data were read), or None; :func:`load_predictor` sets it.

    Example:
        >>> predictor = load_predictor("unet.tflite")
        >>> predictor.fixed_size, predictor.num_classes
        ((256, 256), 7)
        >>> predictor(np.zeros((2, 256, 256, 3), np.float32)).shape
        (2, 256, 256, 7)
    """

    def __init__(
        self,
        run,
        kind,
        path,
        channels,
        fixed_size,
        num_classes=None,
        multiple=DEFAULT_MULTIPLE,
        activation="unknown",
    ):
        self._run = run
        self.kind, self.path = kind, path
        self.channels = int(channels)
        self.fixed_size = None if fixed_size is None else (int(fixed_size[0]), int(fixed_size[1]))
        self.multiple = int(multiple)
        self.activation = activation
        self.contract = None
        if num_classes is None:
            height, width = self.fixed_size or (self.multiple, self.multiple)
            num_classes = self(np.zeros((1, height, width, self.channels), np.float32)).shape[-1]
        self.num_classes = int(num_classes)

    @property
    def name(self):
        """The file it was loaded from, or ``"the model"``, for messages."""
        return self.path or "the model"

    def __call__(self, images):
        """Probabilities of ``images``.

        Args:
            images: float32 ``(N, H, W, C_in)``.

        Returns:
            float32 ``(N, H, W, K)``.

        Raises:
            ValueError: ``images`` is not 4-D, has other channels, or (a fixed-size model)
                another height and width.
        """
        images = np.ascontiguousarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != self.channels:
            raise ValueError(
                f"{self.name} takes images of shape (N, H, W, {self.channels}). "
                f"Received: images of shape {images.shape}"
            )
        if self.fixed_size is not None and images.shape[1:3] != self.fixed_size:
            raise ValueError(
                f"{self.name} takes {self.fixed_size[0]}x{self.fixed_size[1]} (HxW) images only. "
                f"Received: images of shape {images.shape}"
            )
        outputs = np.asarray(self._run(images), np.float32)
        count, height, width = images.shape[:3]
        if outputs.ndim == 3 and outputs.shape[1] == height * width:
            outputs = outputs.reshape(count, height, width, outputs.shape[-1])
        return outputs

    def describe(self):
        """What a report records: ``{"kind", "path", "num_classes", "channels", "fixed_size",
        "multiple", "activation"}``."""
        return {
            "kind": self.kind,
            "path": self.path,
            "num_classes": self.num_classes,
            "channels": self.channels,
            "fixed_size": None if self.fixed_size is None else list(self.fixed_size),
            "multiple": self.multiple,
            "activation": self.activation,
        }


def load_predictor(model_or_path, num_classes=None):
    """A :class:`Predictor` of a Keras model or of a model file.

    Args:
        model_or_path: A :class:`Predictor` (returned as it is), a Keras model, or the path of
            a ``.keras``/``.h5`` file or SavedModel folder (read by
            :func:`sm_pixel_ce.load_model`, or a TF Serving SavedModel of
            ``sm_pixel_ce.export``), a ``.tflite`` or a ``.onnx`` file.
        num_classes: The class count the caller expects (``--classes``), or None not to check.
            Defaults to None.

    Returns:
        A :class:`Predictor`, with the model's data contract (``predictor.contract``, None
        without one).

    Raises:
        ModelFileError: (a ``ValueError``) The path is missing, unreadable, or of no known
            format (the message names it and the formats accepted).
        MissingRuntimeError: The runtime of a ``.tflite`` or ``.onnx`` file is not installed.
        ValueError: The model takes no single 4-D image input, or predicts another number of
            classes than ``num_classes``.

    Example:
        >>> predictor = load_predictor("unet.keras", num_classes=7)
        >>> predictor.kind, predictor.fixed_size, predictor.multiple, predictor.activation
        ('keras', None, 32, 'softmax')
    """
    from ..saving import data_contract

    if isinstance(model_or_path, Predictor):
        predictor = model_or_path
    elif isinstance(model_or_path, keras.Model):
        predictor = keras_predictor(model_or_path)
        predictor.contract = data_contract(model_or_path)
    elif isinstance(model_or_path, (str, os.PathLike)):
        predictor = _load_file(os.fspath(model_or_path))
        predictor.contract = data_contract(model_or_path)
    else:
        raise ValueError(
            f"load_predictor takes a Keras model, a Predictor or the path of {FORMATS}. "
            f"Received: model_or_path of type {type(model_or_path).__name__}"
        )
    if num_classes is not None and predictor.num_classes != num_classes:
        raise ValueError(
            f"the model predicts {predictor.num_classes} classes, but --classes is "
            f"{num_classes} ({predictor.name}: {predictor.num_classes} output channels)"
        )
    return predictor


def _load_file(path):
    from ..saving import load_model, model_file_error

    if not os.path.exists(path):
        raise model_file_error(path, expected=FORMATS)
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".tflite":
            return tflite_predictor(path)
        if suffix == ".onnx":
            return onnx_predictor(path)
        if os.path.isdir(path) and _is_serving_saved_model(path):
            return saved_model_predictor(path)
        if os.path.isdir(path) or suffix in (".keras", ".h5", ".hdf5"):
            return keras_predictor(load_model(path, compile=False), path)
    except MissingRuntimeError:
        raise
    except ModelFileError as error:  # load_model's, worded again with every format read here
        raise model_file_error(path, error.found, FORMATS) from None
    except Exception as error:  # each runtime raises its own types for a damaged file
        raise model_file_error(
            path, f"a file its runtime cannot read ({first_line(error).rstrip('.')})", FORMATS
        ) from None
    raise model_file_error(path, f"a file of another kind ({suffix or 'no suffix'})", FORMATS)


def _is_serving_saved_model(path):
    """A SavedModel without Keras's own metadata: written by ``sm_pixel_ce.export``."""
    return os.path.isfile(os.path.join(path, "saved_model.pb")) and not os.path.isfile(
        os.path.join(path, "keras_metadata.pb")
    )


# --- Keras ------------------------------------------------------------------------------------


def last_activation(model):
    """``"softmax"``, ``"sigmoid"`` or ``"unknown"``: the activation of a Keras model's last layer
    (looking inside a nested model: ``compare`` wraps one behind its standardising layer)."""
    layer = model.layers[-1] if model.layers else None
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    if layer is None:
        return "unknown"
    if isinstance(layer, keras.layers.Softmax) or type(layer).__name__ == "PixelSoftmax":
        return "softmax"
    function = getattr(layer, "activation", None)
    name = getattr(function, "__name__", None)
    if name is None:
        config = layer.get_config().get("activation")
        name = config.get("config") if isinstance(config, dict) else config
    name = str(name).rsplit(">", 1)[-1]  # registered names: "sm_pixel_ce>pixel_softmax"
    return _ACTIVATIONS.get(name, "unknown")


def keras_predictor(model, path=None):
    """A :class:`Predictor` of a channels_last Keras image model.

    Args:
        model: The Keras model: one input ``(N, H, W, C)``, H and W fixed or None.
        path: The file it was loaded from, for messages. Defaults to None.

    Returns:
        A :class:`Predictor` of kind ``"keras"``; ``multiple`` is the architecture's rule for a
        :class:`~sm_pixel_ce.input_sizes.SizeCheckedModel` (or any model with an
        ``architecture`` attribute), else 32.

    Raises:
        ValueError: The model does not take one 4-D channels_last image input.
    """
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[-1] is None:
        raise ValueError(
            f"{path or 'the model'}: predict takes models with one image input of shape "
            f"(N, H, W, C). Received: input_shape={shape}"
        )
    if getattr(model, "data_format", "channels_last") == "channels_first":
        raise ValueError(
            f"{path or 'the model'}: predict takes channels_last models. "
            "Received: data_format='channels_first'"
        )
    height, width, channels = shape[1:]
    fixed = (height, width) if height is not None and width is not None else None
    multiple = DEFAULT_MULTIPLE
    architecture = getattr(model, "architecture", None)
    if architecture:
        backbone = getattr(model, "backbone", None)
        multiple = size_requirement(architecture, backbone, fixed_size=False)[0]
    # One trace for every batch and size (see the module's docstring for the timings).
    spec = tf.TensorSpec((None, height, width, channels), tf.float32)
    run = tf.function(
        lambda images: tf.cast(model(images, training=False), tf.float32),
        input_signature=[spec],
    )
    output = model.output_shape
    classes = output[-1] if not isinstance(output, list) else None
    return Predictor(
        lambda images: run(images).numpy(),
        "keras",
        path,
        channels,
        fixed,
        num_classes=classes,
        multiple=multiple,
        activation=last_activation(model),
    )


# --- TFLite -----------------------------------------------------------------------------------


def tflite_interpreter(path, num_threads=None):
    """A TFLite interpreter of ``path``: ``(interpreter, runtime name)``.

    ``ai_edge_litert``'s when it is installed, else ``tf.lite.Interpreter``.

    Raises:
        MissingRuntimeError: Neither is available.
    """
    threads = num_threads or os.cpu_count()
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(model_path=path, num_threads=threads), "ai_edge_litert"
    except ImportError:
        pass
    interpreter = getattr(tf.lite, "Interpreter", None)
    if interpreter is None:
        raise MissingRuntimeError(
            "running a TFLite file needs ai_edge_litert (the [export] extra): "
            "pip install 'sm_pixel_ce[export]'"
        )
    return interpreter(model_path=path, num_threads=threads), "tf.lite.Interpreter"


class TFLiteSession:
    """A ``.tflite`` file ready to run: float32 images in, float32 outputs out.

    The input is resized (and the tensors allocated again) only when the batch shape changes;
    uint8 input and output (``export(..., int8_io=True)``) are quantized and dequantized with
    the file's own scale and zero point.

    Args:
        path: The ``.tflite`` file.
        num_threads: Interpreter threads; None for the CPU count. Defaults to None.

    Attributes:
        runtime: ``"ai_edge_litert"`` or ``"tf.lite.Interpreter"``.
        input_shape: ``(N, H, W, C)`` of the file's signature, None where it is dynamic.

    Raises:
        ValueError: The file has not exactly one input and one output.

    Example:
        >>> session = TFLiteSession("unet.tflite")
        >>> session(np.zeros((2, 256, 256, 3), np.float32)).shape
        (2, 256, 256, 7)
    """

    def __init__(self, path, num_threads=None):
        self.interpreter, self.runtime = tflite_interpreter(path, num_threads)
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"{path}: expected a model of one input and one output. Received: "
                f"{len(inputs)} input(s), {len(outputs)} output(s)"
            )
        (self.input,) = inputs
        signature = self.input.get("shape_signature", self.input["shape"])
        self.input_shape = tuple(None if int(n) < 0 else int(n) for n in signature)
        self._shape = None

    def __call__(self, images):
        """The file's outputs on float32 ``images`` (dequantized when the output is uint8)."""
        images = np.asarray(images, np.float32)
        interpreter, source = self.interpreter, self.input
        if images.shape != self._shape:
            interpreter.resize_tensor_input(source["index"], list(images.shape), strict=False)
            interpreter.allocate_tensors()
            self._shape = images.shape
        feed = images
        if source["dtype"] == np.uint8:
            scale, zero = source["quantization"]
            feed = np.clip(np.round(images / scale + zero), 0, 255).astype(np.uint8)
        interpreter.set_tensor(source["index"], feed)
        interpreter.invoke()
        (target,) = interpreter.get_output_details()
        outputs = interpreter.get_tensor(target["index"])
        if target["dtype"] == np.uint8:
            scale, zero = target["quantization"]
            outputs = (outputs.astype(np.float32) - zero) * scale
        return np.asarray(outputs, np.float32)


def _fixed(height, width):
    return (height, width) if isinstance(height, int) and isinstance(width, int) else None


def _image_input(path, shape):
    """``(channels, fixed size or None)`` of an ``(N, H, W, C)`` input shape.

    Raises:
        ValueError: Not one image input of shape (N, H, W, C).
    """
    if len(shape) != 4 or shape[-1] is None:
        raise ValueError(
            f"{path}: predict takes models with one image input of shape (N, H, W, C). "
            f"Received: input shape {shape}"
        )
    return shape[-1], _fixed(shape[1], shape[2])


def tflite_predictor(path):
    """A :class:`Predictor` of a ``.tflite`` file (kind ``"tflite"``)."""
    session = TFLiteSession(path)
    return Predictor(session, "tflite", path, *_image_input(path, session.input_shape))


# --- ONNX -------------------------------------------------------------------------------------


class OnnxSession:
    """A ``.onnx`` file in onnxruntime's CPU provider: float32 images in, float32 outputs out.

    Args:
        path: The ``.onnx`` file.

    Attributes:
        input_shape: ``(N, H, W, C)`` of the graph's input, None where it is dynamic (a
            dimension named by a string).

    Raises:
        MissingRuntimeError: onnxruntime is not installed.
    """

    def __init__(self, path):
        ort = require("onnxruntime", "running an ONNX file")
        # Its warnings about tf2onnx's resize attributes (tf_half_pixel_for_nn) are not the user's.
        ort.set_default_logger_severity(3)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        (source,) = self.session.get_inputs()
        self.input_name = source.name
        self.input_shape = tuple(n if isinstance(n, int) else None for n in source.shape)

    def __call__(self, images):
        """The graph's first output on float32 ``images``."""
        feed = {self.input_name: np.asarray(images, np.float32)}
        return np.asarray(self.session.run(None, feed)[0], np.float32)


def onnx_predictor(path):
    """A :class:`Predictor` of a ``.onnx`` file (kind ``"onnx"``)."""
    session = OnnxSession(path)
    output = session.session.get_outputs()[0].shape
    classes = output[-1] if isinstance(output[-1], int) else None
    return Predictor(session, "onnx", path, *_image_input(path, session.input_shape), classes)


# --- TF Serving SavedModel --------------------------------------------------------------------


def saved_model_predictor(path):
    """A :class:`Predictor` of a TF Serving SavedModel's ``serving_default`` signature (kind
    ``"saved_model"``), run with TensorFlow alone."""
    signature = tf.saved_model.load(path).signatures["serving_default"]
    ((name, spec),) = signature.structured_input_signature[1].items()
    channels, fixed = _image_input(path, tuple(spec.shape.as_list()))
    (output,) = signature.structured_outputs

    def run(images):
        return signature(**{name: tf.constant(images)})[output].numpy()

    classes = signature.structured_outputs[output].shape[-1]
    return Predictor(run, "saved_model", path, channels, fixed, classes)
