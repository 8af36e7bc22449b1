"""``sm-pixel-ce scenes``: parse, call :func:`sm_pixel_ce.data.writing.write_scenes`, print what
was written and the next command.

Exit status: 0 when written, 2 for bad arguments or a folder that already holds images or
masks, 1 when the folder cannot be written.
"""

import sys

from ..data.options import TRAINING_SIZE
from ..data.writing import SCENES_COUNT, write_scenes


def add_arguments(parser):
    """Add the ``scenes`` arguments to ``parser``: OUT_DIR, ``--count``, ``--size``, ``--seed``."""
    parser.add_argument(
        "out", metavar="OUT_DIR", help="folder to write images/, masks/ and colors.json to"
    )
    parser.add_argument(
        "--count",
        type=int,
        default=SCENES_COUNT,
        metavar="N",
        help="number of scenes (default: %(default)s, as compare without --data)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=TRAINING_SIZE,
        metavar="S",
        help="side in pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed; another seed gives other scenes, e.g. a test set (default: %(default)s)",
    )


def run(args):
    """Write the scenes ``args`` asks for; returns the exit status."""
    try:
        result = write_scenes(args.out, args.count, args.size, args.seed)
    except ValueError as error:
        print(f"sm-pixel-ce scenes: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"sm-pixel-ce scenes: error: cannot write {args.out}: {error}", file=sys.stderr)
        return 1
    print(
        f"wrote {result['images']} scenes ({result['size']}x{result['size']} px, seed "
        f"{result['seed']}) to {result['folder']}: images/, masks/ (class indices, coloured) and "
        f"{result['colors']} ({len(result['class_names'])} classes: "
        f"{', '.join(result['class_names'])})"
    )
    print(
        f"next: sm-pixel-ce compare --data {result['folder']} --classes "
        f"{len(result['class_names'])} --mask-colors {result['colors']}"
    )
    return 0
