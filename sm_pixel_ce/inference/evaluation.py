"""``evaluate``: a trained model's scores on a data folder, class by class.

The folder is read by :class:`~sm_pixel_ce.data.FolderReader`, as ``compare`` reads it (formats,
EXIF, colour masks, pairing options), and streamed: only counts are kept (a confusion matrix, the
calibration bins, Boundary IoU's intersections and unions, one mIoU per image, and the few worst
images as thumbnails), so memory stays flat however many images the folder holds.

Two resolutions are scored:

* ``size=S``: images resized to S×S and masks to S×S with nearest neighbour, as ``compare``
  trains and validates (the default for a model with a fixed input size, at that size);
* the original resolution (``tile=T``, or the default for a model of any input size): each image
  predicted whole or in overlapping tiles by :func:`~sm_pixel_ce.inference.tiling.predict_image`
  and scored against its mask as stored.

Scores are MMSegmentation's ``IoUMetric`` (:mod:`sm_pixel_ce.scores`), with Boundary IoU
(:mod:`sm_pixel_ce.boundary`), ECE and the Brier score; a multi-label model (sigmoid outputs
scored against multi-label masks) gets per-channel IoU and F1 at a threshold.
"""

import dataclasses
import heapq
import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from ..data import DataError, preview
from ..data.masks import AUTO, color_text
from ..data.multilabel import multilabel_pairs, read_multilabel_mask
from ..data.options import CONTRACT_TABLE, ReadOptions, flat_fields, reads
from ..scores import MultilabelScore, StreamingScore, class_means
from . import evaluation_report
from .predict import as_trained, model_input, progress_bar
from .predictor import load_predictor
from .tiling import (
    check_overlap,
    check_positive,
    check_scales_fit,
    check_sizing,
    check_tta,
    predict_batch_scaled,
    predict_image,
    resize_option,
    scales_text,
    tiling_options,
    tta_option,
    tta_scales_option,
)

#: Images shown in ``worst.png``.
WORST = 6
#: Longer side of the thumbnails kept for ``worst.png``.
THUMBNAIL = 256
#: What evaluate does after resizing whole images, for the sizing line.
_SCORED = "the masks resized alike (nearest neighbour) and scored at that size"
#: Files written in ``out``.
FILES = ("evaluation.json", "report.md", "confusion.png", "reliability.png", "worst.png")


@reads(
    "size",
    "ignore_index",
    "class_names",
    "mask_colors",
    "ignore_color",
    "masks",
    "mask_pattern",
    "bands",
    "scale",
    "no_exif",
    "skip_bad",
)
@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
    """Every option of one ``evaluate`` run, checked when made (see :func:`evaluate`).

    Every reading option of :class:`~sm_pixel_ce.data.options.ReadOptions` applies, held in
    ``read``, given and read as flat keywords and attributes (``exif=`` too, the opposite of
    ``no_exif``): ``size`` scores at S×S, images resized and masks resized with nearest
    neighbour (``compare``'s convention), None at the model's fixed input size, or the original
    resolution for a model of any input size; ``ignore_index`` is 255 with ``ignore_color``
    when not given; ``class_names`` default to the colour table's names or ``class <c>``;
    ``scale`` divides pixel values instead of their type's maximum (255, 65535), for a model
    trained otherwise (e.g. 4095 for 12-bit data).

    Attributes:
        classes: C; checked against the model's outputs. None for the model's. Defaults to
            None.
        tile: Score at the original resolution, predicting in tiles of T×T (see
            :func:`~sm_pixel_ce.inference.tiling.predict_image`). Defaults to None.
        resize: Score whole images resized to the model's size (its data contract's, or
            ``size``), the opposite of ``tile``. Defaults to None: as the model's data contract
            says it was trained (see :func:`~sm_pixel_ce.inference.tiling.sizing`).
        overlap: Tile overlap, in [0, 1). Defaults to 0.25.
        tta: Test-time flips, ``"none"``, ``"hflip"`` or ``"hvflip"`` (see
            :func:`~sm_pixel_ce.inference.tiling.predict_image`). Defaults to ``"none"``.
        tta_scales: Multi-scale test-time augmentation, ``"0.75,1,1.25"``: each image (or, at
            ``size``, each resized image) predicted at each scale and the probabilities
            averaged. Defaults to None: one scale.
        exclude_classes: Classes left out of the ``excluding`` means (indices or names, a list
            or ``"0,3"``), e.g. ``0`` for the background. Defaults to None.
        out: Folder to write ``evaluation.json``, ``report.md``, ``confusion.png``,
            ``reliability.png`` and ``worst.png`` in; None to write nothing. Defaults to None.
        multilabel: Score per channel at ``threshold`` against multi-label masks (see
            :mod:`sm_pixel_ce.data.multilabel`); None to do so for a sigmoid model whose masks
            are multi-label. Defaults to None.
        threshold: Multi-label threshold. Defaults to 0.5.
        read: How the folder is read (:class:`~sm_pixel_ce.data.options.ReadOptions`).
        batch_size: Images (or tiles) per model call. Defaults to 4.
        worst: Images shown in ``worst.png``. Defaults to 6.

    Raises:
        ValueError: The option that is wrong, as spelled on the command line, and what it got.

    Example:
        >>> EvaluateOptions(tile=512, ignore_index=255).overlap
        0.25
    """

    classes: int = None
    tile: int = None
    resize: bool = resize_option()
    overlap: float = 0.25
    tta: str = tta_option()
    tta_scales: str = tta_scales_option()
    exclude_classes: object = None
    out: str = None
    multilabel: bool = None
    threshold: float = 0.5
    read: ReadOptions = dataclasses.field(default_factory=ReadOptions)
    batch_size: int = 4
    worst: int = WORST

    def __post_init__(self):
        if self.size is not None and self.tile is not None:
            raise ValueError(
                f"--size and --tile exclude each other: --size {self.size} scores images resized "
                f"to {self.size}x{self.size}, --tile {self.tile} scores them at their own size in "
                "tiles; pass one."
            )
        check_sizing(self.resize, self.tile)
        for name in ("tile", "batch_size"):
            check_positive(name, getattr(self, name))
        check_overlap(self.overlap)
        check_tta(self.tta)
        object.__setattr__(self, "tta_scales", scales_text(self.tta_scales))
        if not 0 < self.threshold < 1:
            raise ValueError(
                f"--threshold must be in (0, 1), e.g. 0.5. Received: {self.threshold!r}"
            )


def option_fields():
    """The fields of :class:`EvaluateOptions`, the reading options in ``read``'s place."""
    return flat_fields(EvaluateOptions)


def parse_classes(text, num_classes, names=None):
    """``--exclude-classes``: ``"0"``, ``"0,3"`` or class names -> sorted indices.

    Raises:
        ValueError: An index outside ``[0, C)`` or an unknown name, or every class excluded.
    """
    if text in (None, "", ()):
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    indices = set()
    for item in (str(i).strip() for i in items):
        if item.lstrip("-").isdigit() and 0 <= int(item) < num_classes:
            indices.add(int(item))
        elif names is not None and item in names:
            indices.add(names.index(item))
        else:
            raise ValueError(
                f"--exclude-classes takes class indices in [0, {num_classes - 1}] or class "
                f"names, comma-separated. Received: {item!r}"
            )
    if len(indices) == num_classes:
        raise ValueError(
            f"--exclude-classes {text} leaves no class to average over ({num_classes} classes)."
        )
    return sorted(indices)


def _model_name(model):
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    return getattr(model, "name", "model")


def _check_classes(predictor, classes, model):
    """C of the scores: the model's channels (2 for one sigmoid channel), checked against
    ``classes``."""
    predicted = 2 if predictor.num_classes == 1 else predictor.num_classes
    if classes is not None and classes != predicted:
        one = " (one sigmoid channel: background and class 1)" if predictor.num_classes == 1 else ""
        raise ValueError(
            f"{_model_name(model)}: the model predicts {predicted} classes, but --classes is "
            f"{classes}{one}; pass the model the masks were made for, or its number of classes."
        )
    return predicted


def _as_classes(probabilities):
    """Probabilities ``(..., K)``; one sigmoid channel becomes ``(1 - p, p)``."""
    if probabilities.shape[-1] == 1:
        return np.concatenate([1 - probabilities, probabilities], axis=-1)
    return probabilities


def _thumbnail(array, longest=THUMBNAIL):
    step = max(1, int(np.ceil(max(array.shape[:2]) / longest)))
    return np.ascontiguousarray(array[::step, ::step])


class _Worst:
    """The ``count`` images of lowest mIoU, as thumbnails."""

    def __init__(self, count):
        self.count, self.heap, self.seen = count, [], 0

    def add(self, miou, file, image, truth, prediction, kind):
        self.seen += 1
        if miou is None or self.count == 0:
            return
        key = (-miou, -self.seen)
        if len(self.heap) == self.count and key <= self.heap[0][0]:
            return
        item = {
            "file": file,
            "miou": miou,
            "image": preview(_thumbnail(image)[None], kind)[0],
            "truth": _thumbnail(truth),
            "prediction": _thumbnail(prediction),
        }
        entry = (key, self.seen, item)
        if len(self.heap) < self.count:
            heapq.heappush(self.heap, entry)
        else:
            heapq.heapreplace(self.heap, entry)

    def items(self):
        return [item for _, _, item in sorted(self.heap, key=lambda e: (-e[0][0], e[1]))]


def _prefetched(items, read):
    """``read(item)`` of each item, the next one read in a thread while the caller works."""
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(read, items[0]) if items else None
        for index in range(len(items)):
            result = pending.result()
            if index + 1 < len(items):
                pending = pool.submit(read, items[index + 1])
            yield items[index], result


def evaluate(model, data, *, log=None, **options):
    """Score a trained model on a data folder, class by class.

    Args:
        model: A Keras model, or a file :func:`sm_pixel_ce.load_model` reads, or an exported
            ``.tflite`` / ``.onnx`` (run in its own runtime).
        data: Folder with ``images/`` and ``masks/`` (as ``compare`` reads it).
        log: ``log(line)`` for progress lines, or None. Defaults to None.
        **options: The fields of :class:`EvaluateOptions`, checked there. A reading option
            not given is the model's data contract's (classes' names, ignore index, colour
            table, bands, scale, EXIF; see
            :func:`~sm_pixel_ce.data.options.options_from_contract`), and images are sized as
            it was trained (see :func:`~sm_pixel_ce.inference.tiling.sizing`); both are logged.

    Returns:
        The evaluation, as written to ``evaluation.json``: ``classes``, ``per_class``
        (``iou``, ``dice``, ``precision``, ``recall``, ``boundary_iou``, ``pixels``; None where
        undefined), ``miou``, ``mdice``, ``aacc``, ``macc``, ``fwiou``, ``ece``, ``brier``,
        ``excluding``, ``confusion`` (rows are the truth), ``calibration_bins``, ``images``
        (file and mIoU each) and ``skipped``. Multi-label: ``per_class`` has ``iou``, ``f1``
        and ``pixels``; ``miou``, ``mf1``, ``threshold``. Both: ``imagewise``, SMP's per-image
        means (:meth:`~sm_pixel_ce.scores.StreamingScore.imagewise`).

    Raises:
        ValueError: A bad option, an option that contradicts the model's data contract, or a
            model whose classes or input channels do not match.
        DataError: A file of the folder cannot be used (naming it), or no usable image.

    Example:
        >>> result = evaluate("results/models/cce.keras", "test_data", out="eval")
        >>> result["miou"], result["per_class"]["iou"]
    """
    options = EvaluateOptions(**options)
    log = log or (lambda line: None)
    predictor = load_predictor(model)
    num_classes = _check_classes(predictor, options.classes, model)
    options = as_trained(predictor, options, log, after=_SCORED)
    names = None if options.class_names is None else list(options.class_names)
    if names is not None and len(names) != num_classes:
        raise ValueError(
            f"--class-names gives {len(names)} names, but the model predicts {num_classes} "
            f"classes. Received: {','.join(names)}"
        )
    ignore_index = options.read.ignore_value(num_classes)
    options = dataclasses.replace(
        options, size=_scored_size(predictor, model, options), ignore_index=ignore_index
    )
    if options.size is not None:
        check_scales_fit(predictor, "resize", options.tta_scales)
    is_multilabel = _multilabel(predictor, data, names, num_classes, options, log)
    runner = (_MultilabelJob if is_multilabel else _ClassJob)(
        predictor, data, options, num_classes, log
    )
    evaluation = runner.run(names)
    excluded = parse_classes(options.exclude_classes, num_classes, evaluation["classes"])
    evaluation["excluding"] = runner.excluding(excluded)
    evaluation = {
        "model": _model_name(model),
        "data": os.fspath(data),
        "resolution": _resolution(options),
        **evaluation,
    }
    if options.out is not None:
        write_outputs(
            options.out, evaluation, runner.worst.items(), num_classes, options.ignore_index
        )
    return evaluation


def _color_note(reader):
    """The line saying how colours became classes, or None for masks of class indices."""
    table = reader.mask_reader.table
    if table is None:
        return None
    pairs = ", ".join(
        f"{color_text(color)}={number}" for color, number in zip(table.colors, table.classes)
    )
    if table.source == CONTRACT_TABLE:
        return f"  masks: colours decoded with the model's colour table (data contract): {pairs}"
    if table.source == AUTO:
        return (
            "  masks: --mask-colors auto numbered the colours in ascending (R, G, B) order, the "
            f"model having no colour table in a data contract: {pairs}; pass --mask-colors "
            "FILE if it was trained otherwise"
        )
    return None


def _scored_size(predictor, model, options):
    """The side images are resized to (``--size``, or a fixed-size model's side when neither
    ``--size`` nor ``--tile`` is given), or None to score at the images' own size."""
    size, fixed = options.size, predictor.fixed_size
    if size is not None and fixed is not None and tuple(fixed) != (size, size):
        raise ValueError(
            f"{_model_name(model)}: the model takes {fixed[1]}x{fixed[0]} px inputs, but --size "
            f"is {size}; pass --size {fixed[0]} or nothing, or --tile {fixed[0]} to score at the "
            "images' own size."
        )
    if size is None and options.tile is None and fixed is not None:
        if fixed[0] != fixed[1]:
            raise ValueError(
                f"{_model_name(model)}: the model takes {fixed[1]}x{fixed[0]} px inputs; "
                f"evaluate scores square --size inputs or tiles: pass --tile."
            )
        size = int(fixed[0])
    return size


def _resolution(options):
    """How the images were scored, in words for the report."""
    if options.size is not None:
        return f"{options.size}x{options.size} (whole images resized)" + _augmented(options)
    tiles = f" (tiles of {options.tile}, overlap {options.overlap})"
    return "original" + (tiles if options.tile is not None else "") + _augmented(options)


def _augmented(options):
    """The test-time augmentation, in words for the report ("" for none)."""
    parts = [] if options.tta == "none" else [options.tta]
    if options.tta_scales is not None:
        parts.append(f"scales {options.tta_scales}")
    return f", test-time augmentation: {' and '.join(parts)}" if parts else ""


def _multilabel(predictor, data, names, num_classes, options, log):
    """Whether to score per channel: as asked, or for a sigmoid model of K > 1 channels whose
    first mask is multi-label (K channels, or one file per class)."""
    if options.multilabel is not None:
        return bool(options.multilabel)
    if predictor.activation != "sigmoid" or predictor.num_classes < 2:
        return False
    names = names or [str(c) for c in range(num_classes)]
    try:
        pairs = multilabel_pairs(data, names, options.masks)
        read_multilabel_mask(pairs[0][1], num_classes, options.read.exif)
    except DataError:
        log(
            "  a sigmoid model with masks of class indices: scored by the argmax of its "
            "channels (pass --multilabel for per-channel scores)"
        )
        return False
    return True


class _Job:
    """What both kinds of scoring share: options, the worst images, the skipped files."""

    def __init__(self, predictor, data, options, num_classes, log):
        self.predictor, self.data, self.num_classes, self.log = predictor, data, num_classes, log
        for key, value in options.flat().items():
            setattr(self, key, value)
        self.read = options.read
        self.worst = _Worst(options.worst)
        self.images, self.skipped = [], []

    def excluding(self, excluded):
        """The means over the classes not in ``excluded``, or None."""
        if not excluded:
            return None
        keep = [c for c in range(self.num_classes) if c not in excluded]
        return {"classes": list(excluded), **class_means(self.scores, keep)}

    def _predict(self, image):
        return predict_image(self.predictor, image, **tiling_options(self))

    def _predict_resized(self, images):
        return predict_batch_scaled(self.predictor, images, self.tta, self.tta_scales)

    def _record(self, path, miou):
        self.images.append({"file": os.fspath(path), "miou": miou})


class _ClassJob(_Job):
    """Scores of mutually exclusive classes (softmax, or the argmax of sigmoids)."""

    def run(self, names):
        reader = self.read.reader(self.num_classes)
        pairs, skipped = reader.pair(self.data, skip_bad=self.skip_bad)
        self.log(f"Checking {len(pairs)} image/mask pairs in {self.data}")
        pairs, damaged = reader.check(pairs, skip_bad=self.skip_bad)
        note = _color_note(reader)
        if note is not None:
            self.log(note)
        self.skipped = [{"file": s["file"], "reason": s["reason"]} for s in skipped + damaged]
        for bad in self.skipped:
            self.log(f"  skipped: {bad['reason']}")
        if not pairs:
            raise DataError(f"{self.data}: no usable image/mask pair to score.")
        kind = reader.image_kind()
        if kind.channels != self.predictor.channels:
            raise ValueError(
                f"the model takes {self.predictor.channels} input channel(s), but the images of "
                f"{self.data} give {kind.channels} ({kind}); choose bands with --bands."
            )
        self.kind = kind
        self.score = StreamingScore(self.num_classes, self.ignore_index, boundary=True)
        with progress_bar(len(pairs), "  evaluate") as bar:
            if self.size is not None:
                self._run_resized(reader, pairs, bar)
            else:
                self._run_original(reader, pairs, bar)
        result = self.score.result(full=True)
        self.scores = result
        names = names or reader.class_names()
        return {
            "images_scored": len(self.images),
            "multilabel": False,
            "classes": list(names),
            "per_class": {
                "iou": result["per_class_iou"],
                "dice": result["per_class_dice"],
                "precision": result["per_class_precision"],
                "recall": result["per_class_recall"],
                "boundary_iou": result["per_class_boundary_iou"],
                "pixels": [int(p) for p in result["per_class_pixels"]],
            },
            "miou": result["miou"],
            "mdice": result["mdice"],
            "aacc": result["pixel_accuracy"],
            "macc": result["macc"],
            "fwiou": result["fwiou"],
            "imagewise": self.score.imagewise(),
            "ece": result["ece"],
            "brier": result["brier"],
            "confusion": self.score.matrix.astype(int).tolist(),
            "calibration_bins": self.score.calibration_bins(),
            "images": self.images,
            "skipped": self.skipped,
        }

    def _add(self, path, image, probabilities, mask):
        probabilities = _as_classes(probabilities)
        (miou,) = self.score.update(probabilities[None], mask[None])
        self._record(path, miou)
        self.worst.add(miou, path, image, mask, probabilities.argmax(-1), self.kind)

    def _run_resized(self, reader, pairs, bar):
        factor = None if self.scale is None else self.kind.scale / float(self.scale)
        batches = reader.dataset(pairs, self.size).batch(self.batch_size).prefetch(1)
        done = 0
        try:
            for images, labels in batches.as_numpy_iterator():
                if factor is not None:
                    images = images * np.float32(factor)
                probabilities = self._predict_resized(images)
                for index in range(len(images)):
                    path = pairs[done][0]
                    self._add(path, images[index], probabilities[index], labels[index])
                    done += 1
                bar.update(len(images))
        except tf.errors.OpError as error:
            raise (reader.locate_error(pairs, error) or error) from None

    def _run_original(self, reader, pairs, bar):
        def read(pair):
            image_path, mask_path = pair
            return reader.read_image(image_path), reader.read_mask(mask_path)

        for (image_path, _), (pixels, mask) in _prefetched(pairs, read):
            image = model_input(pixels, self.kind.dtype, self.scale)
            probabilities = self._predict(image)
            self._add(image_path, image, probabilities, mask)
            bar.update(1)


class _MultilabelJob(_Job):
    """Per-channel scores of a multi-label model at a threshold."""

    def run(self, names):
        # Per-class files are named by --class-names, else by index.
        pairs = multilabel_pairs(
            self.data, names or [str(c) for c in range(self.num_classes)], self.masks
        )
        names = names or [f"class {c}" for c in range(self.num_classes)]
        reader = self.read.image_reader()
        self.score = MultilabelScore(self.num_classes, self.threshold)
        self.log(f"Scoring {len(pairs)} images of {self.data} per channel at {self.threshold}")
        first = reader.info(pairs[0][0])
        self.kind = reader.kind_of(first)
        if self.kind.channels != self.predictor.channels:
            raise ValueError(
                f"the model takes {self.predictor.channels} input channel(s), but the images of "
                f"{self.data} give {self.kind.channels} ({self.kind}); choose bands with --bands."
            )

        def read(pair):
            try:
                image = reader.read(pair[0])
                return image, read_multilabel_mask(pair[1], self.num_classes, self.read.exif), None
            except DataError as error:
                if not self.skip_bad:
                    raise
                return None, None, str(error)

        with progress_bar(len(pairs), "  evaluate") as bar:
            for (image_path, mask), (pixels, truth, problem) in _prefetched(pairs, read):
                bar.update(1)
                if problem is not None:
                    self.skipped.append({"file": image_path, "reason": problem})
                    continue
                image = model_input(pixels, self.kind.dtype, self.scale)
                if truth.shape[:2] != image.shape[:2]:
                    raise DataError(
                        f"{mask if isinstance(mask, str) else mask[0]}: the mask is "
                        f"{truth.shape[1]}x{truth.shape[0]} px but its image {image_path} is "
                        f"{image.shape[1]}x{image.shape[0]} px."
                    )
                if self.size is not None:
                    image = tf.image.resize(image, (self.size, self.size), antialias=True).numpy()
                    rows = np.arange(self.size) * truth.shape[0] // self.size
                    cols = np.arange(self.size) * truth.shape[1] // self.size
                    truth = truth[rows][:, cols]
                    probabilities = self._predict_resized(image[None])[0]
                else:
                    probabilities = self._predict(image)
                (miou,) = self.score.update(probabilities[None], truth[None])
                self._record(image_path, miou)
        if not self.images:
            raise DataError(f"{self.data}: no usable image/mask pair to score.")
        result = self.score.result()
        self.scores = result
        return {
            "images_scored": len(self.images),
            "multilabel": True,
            "threshold": self.threshold,
            "classes": list(names),
            "per_class": {
                "iou": result["per_class_iou"],
                "f1": result["per_class_f1"],
                "pixels": [int(p) for p in result["per_class_pixels"]],
            },
            "miou": result["miou"],
            "mf1": result["mf1"],
            "imagewise": self.score.imagewise(),
            "images": self.images,
            "skipped": self.skipped,
        }


def write_outputs(out, evaluation, worst, num_classes, ignore_index=None):
    """Write ``evaluation.json``, ``report.md`` and the pictures into ``out``.

    Returns:
        The paths written.
    """
    os.makedirs(out, exist_ok=True)
    paths = {name: os.path.join(out, name) for name in FILES}
    with open(paths["evaluation.json"], "w") as handle:
        json.dump(evaluation, handle, indent=1)
    pictures = []
    if not evaluation["multilabel"]:
        pictures = [
            ("Confusion matrix", paths["confusion.png"]),
            ("Reliability", paths["reliability.png"]),
            ("Worst images", paths["worst.png"]),
        ]
    evaluation_report.write_report(paths["report.md"], evaluation, pictures)
    written = [paths["evaluation.json"], paths["report.md"]]
    if not evaluation["multilabel"]:
        evaluation_report.plot_confusion(
            paths["confusion.png"], evaluation["confusion"], evaluation["classes"]
        )
        evaluation_report.plot_reliability(
            paths["reliability.png"], evaluation["calibration_bins"], ece=evaluation["ece"]
        )
        evaluation_report.plot_worst(paths["worst.png"], worst, num_classes, ignore_index)
        written += [paths["confusion.png"], paths["reliability.png"], paths["worst.png"]]
    return written
