"""``sm-pixel-ce export``: parse, call :func:`sm_pixel_ce.export`, print the check.

Exit status: 0 when the export passed its check, 1 when the check failed or the model file,
the calibration data or a runtime cannot be used, 2 for bad arguments.
"""

import sys

from .._messages import first_line
from ..data.options import flat_fields
from ..exporting import DataError, MissingRuntimeError, ModelFileError, export
from ..exporting.calibration import CalibrationOptions
from ..exporting.convert import FORMATS, QUANTIZATIONS
from ._fields import add_field

#: The flags that say how the --calibration folder is read.
_READING = [f for f in flat_fields(CalibrationOptions) if f.name in CalibrationOptions.READS]


def add_arguments(parser):
    """Add the ``export`` options to ``parser``."""
    parser.add_argument("model", metavar="MODEL", help=".keras, .h5 or SavedModel to export")
    parser.add_argument(
        "--format",
        default="tflite",
        metavar="F",
        help=f"one of {', '.join(FORMATS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--out", required=True, metavar="PATH", help="file to write (a folder for saved_model)"
    )
    parser.add_argument(
        "--size",
        metavar="H[,W]",
        help="trace a model built with None sizes at this size (required for tflite then)",
    )
    parser.add_argument(
        "--quantize", metavar="Q", help=f"one of {', '.join(QUANTIZATIONS)} (default: float32)"
    )
    parser.add_argument(
        "--calibration",
        metavar="DIR",
        help="folder of images, or with images/ (and masks/): int8 calibration and check inputs",
    )
    parser.add_argument(
        "--int8-io", action="store_true", help="tflite int8: uint8 input and output"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        help="largest |probability difference| allowed (default: 1e-4 for float32 exports, "
        "reported only for quantized ones)",
    )
    parser.add_argument("--no-check", action="store_true", help="write the file only")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="convert in this process even for a large model (faster; by default a model over "
        "16 MiB of weights converts in a child process, whose memory returns when it ends)",
    )
    parser.add_argument("--json", metavar="REPORT", help="write the report as JSON here")
    reading = parser.add_argument_group("calibration folder")
    for field in _READING:
        add_field(reading, field)


def run(args):
    try:
        report = export(
            args.model,
            args.out,
            format=args.format,
            size=args.size,
            quantize=args.quantize,
            calibration=args.calibration,
            check=not args.no_check,
            int8_io=args.int8_io,
            tolerance=args.tolerance,
            isolate=False if args.in_process else None,
            **{field.name: getattr(args, field.name) for field in _READING},
        )
    except (ModelFileError, DataError, MissingRuntimeError, RuntimeError) as error:
        print(f"sm-pixel-ce export: {first_line(error)}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"sm-pixel-ce export: {first_line(error)}", file=sys.stderr)
        return 2
    print(report.format_text())
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if report.passed is False:
        print(
            f"sm-pixel-ce export: the {args.format} file differs from Keras by "
            f"{report.max_difference:.3g}, more than the tolerance {report.tolerance:g}",
            file=sys.stderr,
        )
        return 1
    return 0
