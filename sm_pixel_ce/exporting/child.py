"""The conversion of a large model in a child process, so that what the converters hold is
returned to the system when it ends.

Measured on ``compare``'s U-Net (resnet18, 7 classes, 57 MB of weights; see
``examples/deploying.md``), ``sm-pixel-ce export --format onnx`` peaked at 5.2 GB in one process:
tf2onnx's optimizers copy every constant into the node protobufs at each of their ~24 passes,
and protobuf's C implementation (upb) keeps each copy in the message's arena until the message
is freed; the copies it deep-copies to undo a failed pass add more. A child process runs with
protobuf's pure-Python implementation (the copies share the bytes objects and are freed), which
must be chosen before protobuf is imported, hence the process; it also leaves the parent, which
runs the check, without the converters' garbage.

``python -m sm_pixel_ce.exporting.child REQUEST.json`` reads the model from its file, writes the
export and then ``RESULT.json`` (``{"error": null}``, or the error's type and first line).
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from .._messages import first_line
from .errors import MissingRuntimeError, ModelFileError

#: Models whose weights take more bytes than this are converted in a child process; below it,
#: the ~10 s the child takes to start is not worth the memory it saves.
CHILD_BYTES = 16 * 1024 * 1024
#: The child's protobuf implementation (see the module's docstring).
PROTOBUF = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
#: The errors a child reports that the parent raises as they are; any other is a RuntimeError.
_ERRORS = {
    "MissingRuntimeError": MissingRuntimeError,
    "ModelFileError": ModelFileError,
    "MissingModelFileError": ModelFileError,
    "ValueError": ValueError,
    "DynamicSizeError": ValueError,
}


def weight_bytes(model):
    """Bytes of ``model``'s weights (every variable, trainable or not)."""
    # tf.as_dtype reads Keras 3's dtype names and tf_keras's tf.DType alike.
    return sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in model.variables)


def convert_in_child(model_path, out, settings, images=None):
    """Load ``model_path`` in a child process and write its export to ``out`` there.

    Args:
        model_path: A ``.keras``/``.h5``/SavedModel path that :func:`sm_pixel_ce.load_model`
            reads.
        out: The file (a folder for ``"saved_model"``) to write.
        settings: Keywords of :func:`~sm_pixel_ce.exporting.convert.write` other than ``model``,
            ``out`` and ``images``, as JSON values: ``format``, ``quantize``, ``int8_io``,
            ``opset``, ``height``, ``width``.
        images: float32 ``(N, H, W, C)`` calibration images (int8), or None. Defaults to None.

    Returns:
        The child's result: ``{"error": None, "protobuf": "python"}`` (the protobuf
        implementation the child ran).

    Raises:
        MissingRuntimeError, ModelFileError, ValueError: As the conversion raised them in the
            child (one line).
        RuntimeError: The child failed otherwise (its error's first line, or its last line of
            output).
    """
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore", **PROTOBUF)
    env["PYTHONPATH"] = package_parent + (os.pathsep + path if path else "")
    with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_export_") as tmp:
        request = dict(settings, model=os.path.abspath(model_path), out=os.path.abspath(out))
        request["images"] = None
        if images is not None:
            request["images"] = os.path.join(tmp, "images.npy")
            np.save(request["images"], images)
        request["result"] = os.path.join(tmp, "result.json")
        request_path = os.path.join(tmp, "request.json")
        with open(request_path, "w") as handle:
            json.dump(request, handle)
        process = subprocess.run(
            [sys.executable, "-m", __name__, request_path],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
        )
        if not os.path.exists(request["result"]):
            lines = [line for line in process.stderr.splitlines() if line.strip()]
            raise RuntimeError(
                f"the {settings['format']} conversion's child process failed: "
                + (lines[-1] if lines else f"exit status {process.returncode}")
            )
        with open(request["result"]) as handle:
            result = json.load(handle)
    if result["error"] is not None:
        error = _ERRORS.get(result["error"])
        if error is None:
            raise RuntimeError(
                f"the {settings['format']} conversion failed: {result['error']}: "
                f"{result['message']}"
            )
        raise error(result["message"])
    return result


def main(request_path):
    """The child: read the request, load the model, write the export, then the result."""
    with open(request_path) as handle:
        request = json.load(handle)
    from google.protobuf.internal import api_implementation

    result = {"error": None, "protobuf": api_implementation.Type()}
    try:
        from ..saving import data_contract, load_model
        from .convert import write

        model = load_model(request["model"], compile=False)
        images = None if request["images"] is None else np.load(request["images"])
        settings = {k: request[k] for k in ("format", "quantize", "int8_io", "opset")}
        write(
            model,
            request["out"],
            images=images,
            height=request["height"],
            width=request["width"],
            contract=data_contract(model),
            **settings,
        )
    except Exception as error:  # reported to the parent, which raises it
        result.update(error=type(error).__name__, message=first_line(error))
    with open(request["result"], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1])
