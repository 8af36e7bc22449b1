"""``sm-pixel-ce matrix``: parse, call :func:`sm_pixel_ce.matrix.support_matrix`, print."""

import sys

from ..input_sizes import ARCHITECTURES
from ..matrix import FLAVORS, choose_cells, support_matrix


def add_arguments(parser):
    parser.add_argument(
        "--flavor",
        choices=(*FLAVORS, "both"),
        default="both",
        help="Keras flavour(s) to run (default: both)",
    )
    parser.add_argument(
        "--archs",
        default=",".join(ARCHITECTURES),
        help="comma-separated architectures (default: all)",
    )
    parser.add_argument(
        "--backbones", default="all", help="comma-separated backbones, or 'all' (default)"
    )
    parser.add_argument(
        "--subset", choices=("fast",), help="run the fast subset instead of archs x backbones"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes at a time (default: 1)"
    )
    parser.add_argument(
        "--chunk", type=int, default=4, help="cells per worker process (default: 4)"
    )
    parser.add_argument(
        "--results",
        default="support_matrix_results.jsonl",
        help="JSON-lines file of cell results, appended to",
    )
    parser.add_argument("--resume", action="store_true", help="skip cells already in --results")
    parser.add_argument("--out", help="write the Markdown page here (the table is always printed)")
    parser.add_argument(
        "--table-only", action="store_true", help="only render the table from --results"
    )
    parser.add_argument("--workdir", help="where saved models go (default: a temporary folder)")
    parser.add_argument(
        "--export-formats",
        default="",
        help="also export each cell to these formats (tflite,onnx), one column each; results in "
        "the --results file's *_export_results.jsonl sibling",
    )


def run(args):
    backbones = "all" if args.backbones == "all" else [b for b in args.backbones.split(",") if b]
    try:
        cells = choose_cells([a for a in args.archs.split(",") if a], backbones, args.subset)
        table, all_ok = support_matrix(
            cells,
            args.results,
            flavors=FLAVORS if args.flavor == "both" else (args.flavor,),
            resume=args.resume,
            table_only=args.table_only,
            out=args.out,
            workdir=args.workdir,
            jobs=args.jobs,
            chunk=args.chunk,
            export_formats=[f for f in args.export_formats.split(",") if f],
        )
    except ValueError as error:
        print(f"sm-pixel-ce matrix: {error}", file=sys.stderr)
        return 2
    print(table)
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all_ok else 1
