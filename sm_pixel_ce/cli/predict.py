"""``sm-pixel-ce predict``: parse, call :func:`sm_pixel_ce.inference.predict.predict_files`, print
what was written.

Exit status: 0 on success, 1 for an unusable model file, image or folder (or a missing runtime),
2 for bad arguments (and an option an image cannot take, such as a tile larger than it).
"""

import sys

from ..data import DataError
from ..exporting.errors import MissingRuntimeError, ModelFileError
from ..inference.predict import option_fields, predict_files
from ._fields import add_field


def add_arguments(parser):
    """Add the ``predict`` arguments to ``parser``: MODEL, INPUT..., ``--out``, and one option per
    field of :class:`~sm_pixel_ce.inference.predict.PredictOptions` (its reading options'
    from :class:`~sm_pixel_ce.data.options.ReadOptions`)."""
    parser.add_argument(
        "model", metavar="MODEL", help=".keras, .h5, SavedModel folder, .tflite or .onnx"
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files, or folders of images (a folder's images/ when it has one)",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder the masks are written to"
    )
    for field in option_fields():
        add_field(parser, field)


def _error(message, status):
    print(f"sm-pixel-ce predict: error: {' '.join(str(message).split())}", file=sys.stderr)
    return status


def run(args):
    """Predict the masks ``args`` asks for; returns the exit status."""
    options = {field.name: getattr(args, field.name) for field in option_fields()}
    try:
        result = predict_files(
            args.model, args.inputs, args.out, log=lambda line: print(line, flush=True), **options
        )
    except (ModelFileError, DataError, MissingRuntimeError, OSError) as error:
        return _error(error, 1)
    except ValueError as error:
        return _error(error, 2)
    count = len(result["images"])
    print(f"wrote {count} mask(s) to {args.out} in {result['seconds']:.1f} s")
    if result["skipped"]:
        print(f"skipped {len(result['skipped'])} unreadable image(s):")
        for skipped in result["skipped"]:
            print(f"  {skipped['reason']}")
    return 0
