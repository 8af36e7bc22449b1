"""The last step of ``compare``: aggregate the runs over seeds, draw the pictures, write
``report.json``, ``report.md`` and ``predictions.npz``."""

import os
import time
import zipfile

import numpy as np

from ..data import label_dtype
from . import plots, report
from .training import SAMPLE


def write_report(data, held_out, runs, options, folder, start, plan=None):
    """Aggregate the runs and write every file of the report into ``folder``.

    Args:
        data: The :class:`~sm_pixel_ce.compare.reading.Data` that was read.
        held_out: Its :class:`~sm_pixel_ce.compare.splitting.Split`.
        runs: ``{variant: [result per seed]}``, as
            :func:`~sm_pixel_ce.compare.scheduling.schedule` returns.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        folder: The :class:`~sm_pixel_ce.compare.layout.OutputFolder`.
        start: ``time.perf_counter()`` when the comparison began (the wall time reported).
        plan: The :class:`~sm_pixel_ce.compare.budget.Plan` of ``--budget``, reported in a
            section of its own; None without a budget. Defaults to None.

    Returns:
        ``(config, results, class_names)``: the configuration written in ``report.json``, one
        aggregated result dict per variant, and the class names.

    Example:
        >>> config, results, names = write_report(data, held_out, runs, options, folder, start)
    """
    results = report.aggregate(runs)
    _draw(folder, held_out.val, results, options, data.class_names)
    facts = data.facts
    if "input" in facts:  # the standardisation the saved models start with
        statistics = held_out.train.normalization()
        facts["input"]["normalization"] = statistics and dict(zip(("mean", "variance"), statistics))
    config = options.report_config(
        data.description,
        class_names=data.class_names,
        train_images=len(held_out.train),
        val_images=len(held_out.val),
        skipped=data.skipped,
        wall_seconds=time.perf_counter() - start,
        **facts,
    )
    pictures = list(folder.pictures.values())
    budget = None if plan is None else plan.as_dict(options.budget)
    report.write_json(folder.report_json, config, results, budget)
    report.write_markdown(folder.report_md, config, results, data.class_names, pictures, budget)
    _save_predictions(folder, held_out.val, options)
    return config, results, data.class_names


def _draw(folder, val, results, options, class_names):
    """The report's pictures: learning curves, per-class IoU, and the first validation images
    with each variant's prediction (first seed)."""
    sample_images, sample_masks = _first(val, SAMPLE)
    samples = {}
    for v in options.variant_list:
        with np.load(folder.run(v.name, options.seed).sample) as saved:
            samples[v.name] = saved["predictions"]
    pictures = folder.pictures
    plots.learning_curves(pictures["curves"][1], results)
    plots.per_class_bars(pictures["per_class"][1], results, class_names)
    plots.prediction_grid(
        pictures["predictions"][1],
        val.display(sample_images),
        sample_masks,
        samples,
        options.classes,
        options.ignore_index,
        class_names=class_names,
    )


def _first(source, count):
    """The first ``count`` images and masks of a source, as arrays."""
    images, masks = next(iter(source.dataset().batch(count)))
    return images.numpy(), masks.numpy()


def _save_predictions(folder, val, options):
    """``predictions.npz``: validation images, labels and each variant's argmax (first seed), for
    checking the report independently; the first :data:`SAMPLE` images, or all of them
    (``--predictions all``), written batch by batch."""
    everything = options.predictions == "all"
    count = len(val) if everything else min(SAMPLE, len(val))

    def batches(index):
        for pair in val.dataset().take(count).batch(64):
            yield pair[index].numpy()

    def predictions(variant):
        run = folder.run(variant, options.seed)
        if not everything:
            with np.load(run.sample) as saved:
                yield saved["predictions"][:count]
            return
        array = np.load(run.val_predictions, mmap_mode="r")
        for i in range(0, count, 64):
            yield np.array(array[i : i + 64])

    size = val.size
    # Labels as streamed (uint16 beyond 256 values); predictions likewise, of the classes alone.
    masks = label_dtype(options.classes, options.ignore_index)
    labels = label_dtype(options.classes)
    members = [
        ("val_images", (count, size, size, val.channels), np.float32, batches(0)),
        ("val_masks", (count, size, size), masks, batches(1)),
    ] + [
        (f"pred_{v.name.replace('-', '_')}", (count, size, size), labels, predictions(v.name))
        for v in options.variant_list
    ]
    path = folder.predictions
    with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, shape, dtype, chunks in members:
            with archive.open(name + ".npy", "w", force_zip64=True) as f:
                header = {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                    "fortran_order": False,
                    "shape": shape,
                }
                np.lib.format.write_array_header_2_0(f, header)
                for chunk in chunks:
                    f.write(np.ascontiguousarray(chunk, dtype).tobytes())
    os.replace(path + ".tmp", path)
