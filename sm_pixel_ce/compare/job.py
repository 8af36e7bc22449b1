"""One ``compare`` run, as one straight pipeline: read the data, split it, count the training
classes, schedule the runs, write the report. :func:`run_compare` is what ``sm-pixel-ce
compare`` calls; each step is a function of its own module, and none calls back up."""

import time

from ..flavor import KERAS_FLAVOR
from .budget import fit_budget, kept_by_folder
from .counting import count
from .layout import OutputFolder, write_json
from .options import CompareOptions
from .reading import read
from .reporting import write_report
from .scheduling import claim, schedule
from .splitting import split

DEFAULT_OUT = "sm-pixel-ce-compare"


def run_compare(options=None, out=DEFAULT_OUT, resume=False, log=None):
    """Train the same model once per variant (and seed), score all alike, and write the report.

    The data stream from disk through ``tf.data`` and every metric is accumulated batch by
    batch. Each finished run is written to ``out/runs/`` at once; with ``resume`` the runs
    already there are not trained again. With ``options.budget``, the seeds, epochs and
    ``--prune`` are first planned to fit it (:mod:`~sm_pixel_ce.compare.budget`); the report
    says what was dropped.

    Args:
        options: A :class:`~sm_pixel_ce.compare.options.CompareOptions`; None for the defaults.
        out: Output folder (see :mod:`~sm_pixel_ce.compare.layout`). Defaults to
            ``"sm-pixel-ce-compare"``.
        resume: Keep the runs already in ``out`` (same configuration required). Defaults to False.
        log: Callable given progress lines. Defaults to None.

    Returns:
        ``(config, results, class_names)``: the configuration in ``report.json``, one
        aggregated result dict per variant, and the class names.

    Raises:
        ValueError: ``out`` holds runs of another configuration (or any, without ``resume``),
            or ``options.budget`` cannot hold one seed of one epoch.
        DataError: The data folder cannot be used; the message names the file at fault.
        EncoderWeightsError: The encoder weights are missing or do not fit.
        CompareInterrupted: Ctrl-C; the finished runs are saved.

    Example:
        >>> config, results, names = run_compare(CompareOptions(epochs=1, images=16), "results")
        >>> [r["variant"] for r in results]
        ['cce', 'bce']
    """
    start = time.perf_counter()
    options = CompareOptions() if options is None else options
    log = log or (lambda line: None)
    folder = OutputFolder(out)
    data = read(options, log)
    held_out = split(data.source, options.val_fraction, options.seed)
    plan, kept = None, False
    if options.budget is not None:
        options, kept = kept_by_folder(options, folder, resume)
    claim(folder, options.run_config(data.description, data.files), resume)
    counts = count(held_out.train, options, log)
    if options.budget is not None:
        spent = time.perf_counter() - start
        options, plan = fit_budget(held_out, options, folder, counts, spent, resume, kept, log)
        # claim checked the folder; it now records the grid planned.
        write_json(folder.run_config, options.run_config(data.description, data.files))
    log(_headline(options, data, held_out))
    runs = schedule(held_out, options, folder, counts, log)
    return write_report(data, held_out, runs, options, folder, start, plan)


def _headline(options, data, held_out):
    """The line that says what is compared, on what."""
    return (
        f"Comparing {', '.join(options.variants)}: sm.{options.arch}({options.backbone!r}, "
        f"encoder_weights={options.encoder_weights_name!r}) on {data.description}, "
        f"{len(held_out.train)} train / {len(held_out.val)} val images, "
        f"{options.epochs} epochs, {options.seeds} seed(s), Keras {KERAS_FLAVOR}"
    )
