"""``sm-pixel-ce evaluate``: parse, call :func:`sm_pixel_ce.inference.evaluation.evaluate`, print
the per-class table.

Exit status: 0 on success, 1 for unusable data or model files, 2 for bad arguments.
"""

import os
import sys

from ..data import DataError
from ..exporting.errors import MissingRuntimeError, ModelFileError
from ..inference.evaluation import FILES, EvaluateOptions, evaluate, option_fields
from ..inference.evaluation_report import report_markdown
from ._fields import add_field


def _positive(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, received {text!r}")
    return value


def add_arguments(parser):
    """Add the ``evaluate`` arguments to ``parser``."""
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="a .keras/.h5 file or SavedModel (sm_pixel_ce.load_model), or an exported "
        ".tflite / .onnx",
    )
    parser.add_argument(
        "--data", required=True, metavar="DIR", help="folder with images/* and masks/*"
    )
    parser.add_argument(
        "--classes",
        type=_positive,
        metavar="C",
        help="number of classes (checked against the model's outputs; default: the model's)",
    )
    scoring = parser.add_argument_group("resolution")
    scoring.add_argument(
        "--tile",
        type=_positive,
        metavar="T",
        help="score at the images' own size, predicting in TxT tiles, the opposite of --resize "
        "(default: as the model's data contract says it was trained; without one, whole up to "
        "1024 px, tiles of 512 beyond)",
    )
    fields = {field.name: field for field in option_fields()}
    add_field(scoring, fields["resize"])
    scoring.add_argument(
        "--overlap", type=float, default=0.25, help="tile overlap in [0, 1) (default: 0.25)"
    )
    add_field(scoring, fields["tta"])
    add_field(scoring, fields["tta_scales"])
    scoring.add_argument(
        "--batch-size", type=_positive, default=4, help="images or tiles per call (default: 4)"
    )
    names = parser.add_argument_group("classes")
    names.add_argument(
        "--exclude-classes",
        metavar="LIST",
        help="classes left out of the 'excluding' means, e.g. 0 for the background",
    )
    names.add_argument(
        "--multilabel",
        action="store_true",
        default=None,
        help="score each output channel at --threshold against multi-label masks (default "
        "for a sigmoid model whose masks have a channel or file per class)",
    )
    names.add_argument(
        "--threshold", type=float, default=0.5, help="multi-label threshold (default: 0.5)"
    )
    reading = parser.add_argument_group("data")
    for field in option_fields():
        if field.name in EvaluateOptions.READS:
            add_field(reading, field)
    parser.add_argument(
        "--out", default="evaluation", metavar="DIR", help="output folder (default: evaluation)"
    )


def _error(message, status=2):
    print(f"sm-pixel-ce evaluate: error: {message}", file=sys.stderr)
    return status


def run(args):
    """Score ``args.model`` on ``args.data``; returns the exit status."""
    options = {f.name: getattr(args, f.name) for f in option_fields() if f.name in vars(args)}
    try:
        result = evaluate(
            args.model, args.data, log=lambda line: print(line, flush=True), **options
        )
    except (ModelFileError, DataError, MissingRuntimeError, OSError) as error:
        return _error(str(error), status=1)
    except ValueError as error:
        return _error(str(error))
    print()
    print(report_markdown(result))
    written = [os.path.join(args.out, name) for name in FILES]
    if result["multilabel"]:
        written = written[:2]
    print(f"Written: {', '.join(written)}")
    return 0
