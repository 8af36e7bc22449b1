"""Export trained models to TFLite, ONNX and TF Serving SavedModels, checked in their runtimes.

The package is ``sm_pixel_ce.exporting`` so that ``sm_pixel_ce.export`` stays the function
(:func:`sm_pixel_ce.exporting.job.export`).

* :mod:`.tracing` — the size an export is traced at and the serving ``tf.function``;
* :mod:`.convert` — one converter per format, and the quantizations;
* :mod:`.calibration` — the sample images of ``--calibration``;
* :mod:`.check` — the runtimes and the comparison with Keras;
* :mod:`.report` — :class:`ExportReport`, as text and JSON.
"""

from .errors import DataError, MissingRuntimeError, ModelFileError
from .job import DEFAULT_TOLERANCE, export
from .report import ExportReport

__all__ = [
    "DEFAULT_TOLERANCE",
    "DataError",
    "ExportReport",
    "MissingRuntimeError",
    "ModelFileError",
    "export",
]
