"""``sm-pixel-ce compare``: parse, call :func:`sm_pixel_ce.compare.run_compare`, print the tables.

Exit status: 0 on success, 1 for unusable data or weights files, 2 for bad arguments, 130 when
interrupted (Ctrl-C; finished runs are kept and the command that resumes is printed).
"""

import shlex
import sys

from ..compare import report
from ..compare.encoders import EncoderWeightsError
from ..compare.job import DEFAULT_OUT, run_compare
from ..compare.layout import OutputFolder
from ..compare.options import CompareOptions, option_fields
from ..compare.parallel import RAY_MISSING
from ..compare.scheduling import CompareInterrupted
from ..data import DataError
from ._fields import add_field, flag

_GROUPS = {
    "data": "data (default: generated 7-class scenes)",
    "training": "training",
    "devices": "many devices and machines",
    "output": "output",
}


def add_arguments(parser):
    """Add the ``compare`` options to ``parser``: one per field of
    :class:`~sm_pixel_ce.compare.options.CompareOptions`, and ``--out``, ``--resume``."""
    groups = {key: parser.add_argument_group(title) for key, title in _GROUPS.items()}
    groups["output"].add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help="output folder (default: %(default)s)"
    )
    groups["output"].add_argument(
        "--resume",
        action="store_true",
        help="keep the finished runs in --out (same configuration) and train only the others",
    )
    for field in option_fields():
        group = field.metadata["group"]
        default = ",".join(field.default) if field.name == "variants" else None
        add_field(groups[group] if group else parser, field, default=default)


def resume_command(options, out):
    """The command line that resumes the run of ``options`` into ``out``."""
    words = ["sm-pixel-ce", "compare"]
    for name, value in options.changed().items():
        if value is True:
            words.append(flag(name))
        elif value is not None and value is not False:
            words += [flag(name), ",".join(value) if name == "variants" else str(value)]
    if out != DEFAULT_OUT:
        words += ["--out", out]
    return shlex.join(words + ["--resume"])


def _error(message, status=2):
    print(f"sm-pixel-ce compare: error: {message}", file=sys.stderr)
    return status


def options_from(args):
    """The :class:`~sm_pixel_ce.compare.options.CompareOptions` that parsed ``args`` ask for."""
    return CompareOptions(**{f.name: getattr(args, f.name) for f in option_fields()})


def run(args):
    """Run the comparison described by ``args``; returns the exit status."""
    try:
        options = options_from(args)
        config, results, class_names = run_compare(
            options, args.out, resume=args.resume, log=lambda line: print(line, flush=True)
        )
    except CompareInterrupted as stopped:
        print(f"sm-pixel-ce compare: {stopped}.", file=sys.stderr)
        left = ", ".join(f"{v} seed {s}" for v, s in stopped.missing) or "none"
        print(f"Not finished: {left}. Resume with:", file=sys.stderr)
        print(f"  {resume_command(options, args.out)}", file=sys.stderr)
        return 130
    except ImportError as error:
        if str(error) != RAY_MISSING:
            raise
        return _error(str(error), status=1)
    except (DataError, EncoderWeightsError) as error:
        return _error(str(error), status=1)
    except ValueError as error:
        return _error(str(error))
    out = OutputFolder(args.out)
    print()
    print(report.table(results))
    print()
    print(report.per_class_table(results, class_names))
    print()
    advice = report.recommendation(results, class_names, config=config)
    print(advice["text"])
    differences = report.difference_table(advice, results)
    if differences:
        print()
        print(differences)
    if advice["code"]:
        print(f"\nTo train with {advice['best']}:")
        print("\n".join(f"    {line}" for line in advice["code"]))
    print()
    reloads = ", ".join(f"{r['variant']} {r['reload_max_abs_diff']:.1e}" for r in results)
    print(
        f"Models saved as {out.model('<variant>')} and reloaded; "
        f"largest output difference: {reloads}"
    )
    if config["skipped"]:
        print(f"Skipped {len(config['skipped'])} damaged pair(s), listed in {out.report_md}")
    budget = config.get("budget")
    print(
        f"Report: {out.report_md}, {out.report_json}; wall time {config['wall_seconds']:.0f} s"
        + (f" (--budget {budget:g} min)" if budget is not None else "")
    )
    return 0
