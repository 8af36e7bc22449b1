"""One ``compare`` run: check the arguments, check the data folder file by file, stream every
variant's training and scoring from disk, write each finished run at once, and draw and write the
report. :func:`run_compare` is what ``sm-pixel-ce compare`` calls."""

import dataclasses
import json
import os
import time
import zipfile

import numpy as np

from ..data import (
    CLASS_NAMES,
    ArraySource,
    DataError,
    FolderReader,
    FolderSource,
    check_pairs,
    fingerprint,
    label_dtype,
    make_scenes,
    parse_bands,
    parse_color,
)
from ..flavor import KERAS_FLAVOR
from . import plots, report
from .encoders import check_encoder_bands
from .experiment import run_comparison, split
from .layout import OutputFolder, write_json
from .options import CompareOptions
from .training import SAMPLE

DEFAULT_OUT = "sm-pixel-ce-compare"
# run_config key -> how the difference is named when --resume meets another configuration.
_CONFIG_NAMES = {
    "data": "--data",
    "files": "the image/mask pairs used (names, order or count)",
    "keras": "the Keras flavour (TF_USE_LEGACY_KERAS)",
}


_DEFAULTS = {field.name: field.default for field in dataclasses.fields(CompareOptions)}


class CompareInterrupted(Exception):
    """Ctrl-C stopped :func:`run_compare`; every run finished before it is saved.

    Attributes:
        out: The output folder.
        finished: ``(variant, seed)`` of the runs saved there.
        missing: ``(variant, seed)`` of the runs asked for and not finished.
    """

    def __init__(self, out, finished, missing):
        self.out, self.finished, self.missing = out, finished, missing
        saved = ", ".join(f"{v} seed {s}" for v, s in finished) or "none"
        super().__init__(f"interrupted; finished runs saved in {OutputFolder(out).runs}: {saved}")


def run_compare(options=None, out=DEFAULT_OUT, resume=False, log=None):
    """Train the same model once per variant (and seed), score all alike, and write the report.

    The data stream from disk through ``tf.data`` (decode, resize, batch, prefetch) and every
    metric is accumulated batch by batch, so memory does not grow with the folder. Each
    finished (variant, seed) run is written to ``out/runs/`` at once; with ``resume`` the runs
    already there are not trained again.

    Args:
        options: A :class:`~sm_pixel_ce.compare.options.CompareOptions`; None for the defaults.
        out: Output folder (see :mod:`~sm_pixel_ce.compare.layout`). Defaults to
            ``"sm-pixel-ce-compare"``.
        resume: Keep the runs already in ``out`` (same configuration required).
            Defaults to False.
        log: Callable given progress lines. Defaults to None.

    Returns:
        ``(config, results, class_names)``: the run's configuration (as in ``report.json``), one
        aggregated result dict per variant, and the class names.

    Raises:
        ValueError: An output folder that holds runs of another configuration (or any, without
            ``resume``).
        DataError: The data folder cannot be used; the message names the file at fault.
        EncoderWeightsError: The encoder weights are missing or do not fit.
        CompareInterrupted: Ctrl-C; the finished runs are saved.

    Example:
        >>> config, results, names = run_compare(CompareOptions(epochs=1, images=16), "results")
        >>> [r["variant"] for r in results]
        ['cce', 'bce']
    """
    import tensorflow as tf

    start = time.perf_counter()
    options = CompareOptions() if options is None else options
    log = log or (lambda line: None)
    folder = OutputFolder(out)
    # Retracing warnings are expected: every variant is a new model with its own functions.
    tf.get_logger().setLevel("ERROR")
    skipped, data_facts = [], {}
    if options.data is None:
        # The scenes stay in memory, but flow through the same tf.data pipeline.
        images, size, seed = options.images, options.size, options.seed
        source = ArraySource(*make_scenes(images, size=size, seed=seed))
        class_names = list(CLASS_NAMES)
        description = f"generated scenes (make_scenes({images}, size={size}, seed={seed}))"
    else:
        reader = FolderReader(
            options.classes,
            options.ignore_index,
            bands=parse_bands(options.bands),
            exif=not options.no_exif,
            mask_colors=options.mask_colors,
            ignore_color=parse_color(options.ignore_color),
            masks=options.masks,
            mask_pattern=options.mask_pattern,
        )
        pairs, skipped = reader.pair(options.data, skip_bad=options.skip_bad)
        log(f"Checking {len(pairs)} image/mask pairs in {options.data}")
        pairs, damaged = check_pairs(pairs, skip_bad=options.skip_bad, reader=reader)
        skipped += damaged
        for bad in skipped:
            log(f"  skipped: {bad['reason']}")
        if len(pairs) < 2:
            raise DataError(
                f"{options.data}: need at least 2 usable image/mask pairs to hold some out; "
                f"found {len(pairs)}."
            )
        source = FolderSource(pairs, options.size, reader)
        check_encoder_bands(options.encoder_weights, source.channels)
        class_names = reader.class_names()
        description = os.path.abspath(options.data)
        data_facts = reader.describe()
        kind = source.kind
        log(
            f"  images: {kind}, divided by {kind.scale}"
            + (", standardised per band by the model's first layer" if kind.standardised else "")
            + (f"; {reader.turned} turned by their EXIF orientation" if reader.turned else "")
        )
        for row in data_facts.get("mask_colors", {}).get("colors", []):
            ignored = row["class"] == options.ignore_index
            log(
                f"  colour {tuple(row['color'])} -> "
                + (f"ignored ({row['class']})" if ignored else f"class {row['class']}")
                + (f" {row['name']}" if row["name"] else "")
                + (f", {row['pixels']} px" if "pixels" in row else "")
            )

    held_out = split(source, options.val_fraction, options.seed)
    files = f"{len(source)} pairs, sha256 {fingerprint(source.names)}"
    _claim_output_folder(folder, options.run_config(description, files), resume)
    log(
        f"Comparing {', '.join(options.variants)}: sm.{options.arch}({options.backbone!r}, "
        f"encoder_weights={options.encoder_weights_name!r}) on {description}, "
        f"{len(held_out.train)} train / {len(held_out.val)} val images, "
        f"{options.epochs} epochs, {options.seeds} seed(s), Keras {KERAS_FLAVOR}"
    )
    try:
        runs = run_comparison(held_out, options, folder, log=log)
    except KeyboardInterrupt:
        done = folder.finished_runs()
        wanted = [(v.name, s) for s in options.seed_list for v in options.variant_list]
        raise CompareInterrupted(out, done, [r for r in wanted if r not in done]) from None
    results = report.aggregate(runs)

    sample_images, sample_masks = _first(held_out.val, SAMPLE)
    samples = {}
    for v in options.variant_list:
        with np.load(folder.run(v.name, options.seed).sample) as saved:
            samples[v.name] = saved["predictions"]
    pictures = folder.pictures
    plots.learning_curves(pictures["curves"][1], results)
    plots.per_class_bars(pictures["per_class"][1], results, class_names)
    plots.prediction_grid(
        pictures["predictions"][1],
        held_out.val.display(sample_images),
        sample_masks,
        samples,
        options.classes,
        options.ignore_index,
        class_names=class_names,
    )

    if "input" in data_facts:  # the standardisation the saved models start with
        statistics = held_out.train.normalization()
        data_facts["input"]["normalization"] = statistics and dict(
            zip(("mean", "variance"), statistics)
        )
    config = options.report_config(
        description,
        class_names=class_names,
        train_images=len(held_out.train),
        val_images=len(held_out.val),
        skipped=skipped,
        wall_seconds=time.perf_counter() - start,
        **data_facts,
    )
    report.write_json(folder.report_json, config, results)
    report.write_markdown(folder.report_md, config, results, class_names, list(pictures.values()))
    _save_predictions(folder, held_out.val, options)
    return config, results, class_names


def _claim_output_folder(folder, run_config, resume):
    """Refuse a folder whose finished runs would be lost or mixed with another configuration;
    then record this run's configuration there."""
    out = folder.root
    done = folder.finished_runs()
    if done and not resume:
        raise ValueError(
            f"--out {out} already holds {len(done)} finished run(s); pass --resume to keep them "
            "and train only the missing ones, or choose another --out."
        )
    if resume and os.path.isfile(folder.run_config):
        with open(folder.run_config) as f:
            # An option added since the folder was written had its default there.
            before = {**_DEFAULTS, **json.load(f)}
        differences = [
            f"{_CONFIG_NAMES.get(key, '--' + key.replace('_', '-'))} "
            f"{before.get(key)!r} there, {value!r} here"
            for key, value in run_config.items()
            if before.get(key) != value
        ]
        if differences:
            raise ValueError(
                f"--resume: {out} was run with another configuration: "
                + "; ".join(differences)
                + ". Resume with the same options, or choose another --out."
            )
    os.makedirs(out, exist_ok=True)
    write_json(folder.run_config, run_config)


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
