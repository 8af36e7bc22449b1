"""``predict``: masks of image files of any size with a trained model, written as palette PNGs.

* :class:`PredictOptions` — every option with its default and its help, checked once;
* :class:`PredictionFiles` — the output folder's file names;
* :func:`find_inputs` — the image files of the inputs given (files, folders, ``DIR/images``);
* :func:`predict_files` — the job: each image read as ``compare`` reads it, predicted by
  :func:`~sm_pixel_ce.inference.tiling.predict_image`, and its mask (and on request its
  probabilities and an overlay) written, one image at a time.
"""

import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tqdm
from PIL import Image

from ..data import IMAGE_SUFFIXES, SCALES, DataError, ImageKind, OptionsMismatch
from ..data.errors import some
from ..data.images import preview
from ..data.options import ReadOptions, flat_fields, option, options_from_contract, reads
from ..data.pairing import list_files
from . import palette
from .predictor import load_predictor
from .tiling import (
    check_overlap,
    check_positive,
    check_sizing,
    check_tta,
    plan,
    predict_image,
    resize_option,
    scales_text,
    sizing,
    tiling_options,
    tta_option,
    tta_scales_option,
)


@reads("size", "bands", "scale", "no_exif", "skip_bad")
@dataclasses.dataclass(frozen=True)
class PredictOptions:
    """Every option of one ``predict`` run, checked when made.

    The reading options ``size`` (predict at S x S, resized, then back), ``bands``, ``scale``
    (what pixel values are divided by instead of their type's maximum), ``no_exif`` and
    ``skip_bad`` (skip unreadable images, listed at the end) are those of
    :class:`~sm_pixel_ce.data.options.ReadOptions`, held in ``read``, given and read as flat
    keywords and attributes (``exif=`` too, the opposite of ``no_exif``).

    Attributes:
        tile: Tile side in pixels, or None: as the model's data contract says it was trained,
            else a fixed-size model resizes each image to its size, a flexible one predicts
            images up to 1024 px whole and larger ones in tiles of 512 (see
            :func:`~sm_pixel_ce.inference.tiling.sizing`).
        resize: Resize whole images to the model's size (its data contract's, or ``size``) and
            the predictions back, the opposite of ``tile``. Defaults to None.
        overlap: Fraction of a tile shared with the next, in [0, 1). Defaults to 0.25.
        tta: ``"none"``, ``"hflip"`` or ``"hvflip"``. Defaults to ``"none"``.
        tta_scales: Multi-scale test-time augmentation: the factors each image is resized by,
            ``"0.75,1,1.25"`` (a sequence of numbers too; kept as that canonical string).
            Defaults to None: the image's own scale only.
        probabilities: Also write float16 ``(H, W, K)`` probabilities (``.npy``).
        overlay: Also write the mask's colours over the image (``.png``).
        read: How images are read (:class:`~sm_pixel_ce.data.options.ReadOptions`).
        batch_size: Tiles per model call. Defaults to 4.

    Raises:
        ValueError: The option that is wrong, as spelled on the command line, and what it got.

    Example:
        >>> PredictOptions(tile=512, tta="hflip", bands=(0, 1, 2)).bands
        '0,1,2'
    """

    tile: int = option(
        None,
        "slide a TxT window over the images at their own scale, T rounded up to the model's "
        "multiple; the opposite of --resize (default: as the model's data contract says it "
        "was trained; without one, resize to a fixed-size model's size, or a flexible model "
        "takes images up to 1024 px whole, larger ones in tiles of 512)",
        int,
        metavar="T",
    )
    resize: bool = resize_option()
    overlap: float = option(
        0.25,
        "fraction of a tile shared with the next, in [0, 1) (default: %(default)s)",
        float,
        metavar="F",
    )
    tta: str = tta_option()
    tta_scales: str = tta_scales_option()
    probabilities: bool = option(False, "also write {stem}_probabilities.npy, float16 (H, W, K)")
    overlay: bool = option(False, "also write {stem}_overlay.png, the mask over the image")
    read: ReadOptions = dataclasses.field(default_factory=ReadOptions)
    batch_size: int = option(4, "tiles per model call (default: %(default)s)", int, metavar="N")

    def __post_init__(self):
        for name in ("tile", "batch_size"):
            check_positive(name, getattr(self, name))
        check_overlap(self.overlap)
        check_tta(self.tta)
        object.__setattr__(self, "tta_scales", scales_text(self.tta_scales))
        check_sizing(self.resize, self.tile)
        if self.tile is not None and self.size is not None:
            raise ValueError(
                "--size resizes the whole image and --tile slides a window over it at its own "
                f"size; pass one of them. Received: --tile {self.tile} --size {self.size}"
            )


def option_fields():
    """The fields of :class:`PredictOptions`, the reading options in ``read``'s place, in
    ``--help`` order."""
    return flat_fields(PredictOptions)


class PredictionFiles:
    """The names of what ``predict`` writes in its output folder, per input stem.

    Example:
        >>> PredictionFiles("out").mask("a")
        'out/a.png'
    """

    def __init__(self, root):
        self.root = os.fspath(root)

    def mask(self, stem):
        """The mask: a palette PNG of class indices in the model's colours."""
        return os.path.join(self.root, f"{stem}.png")

    def probabilities(self, stem):
        """float16 ``(H, W, K)`` probabilities."""
        return os.path.join(self.root, f"{stem}_probabilities.npy")

    def overlay(self, stem):
        """The mask's colours over the image."""
        return os.path.join(self.root, f"{stem}_overlay.png")

    def classes(self):
        """The legend: ``[{"class", "name", "color"}]`` of every class, in JSON."""
        return os.path.join(self.root, "classes.json")


def as_trained(predictor, options, log, after=None):
    """A job's options with what was not given taken from the model's data contract
    (:func:`~sm_pixel_ce.data.options.options_from_contract`) and the sizing chosen
    (:func:`~sm_pixel_ce.inference.tiling.sizing`), both said in ``log``.

    Args:
        predictor: The :class:`~sm_pixel_ce.inference.predictor.Predictor` (its contract).
        options: A job's options (:class:`PredictOptions`, ``EvaluateOptions``) with ``tile``,
            ``resize`` and reading options.
        log: ``log(line)``.
        after: What the job does after resizing whole images, in words; None for
            :func:`~sm_pixel_ce.inference.tiling.sizing`'s. Defaults to None.

    Returns:
        The options, of the same class.

    Raises:
        ValueError: An option that contradicts the contract, or ``resize`` with ``tile``.
    """
    contract = predictor.contract
    if contract is not None:
        log(f"data contract: {contract.describe()}")
    read = options_from_contract(options.read, contract, type(options).READS)
    size, tile, line = sizing(predictor, options.tile, options.resize, options.size, after)
    log(line)
    return dataclasses.replace(options, read=dataclasses.replace(read, size=size), tile=tile)


def legend(predictor):
    """``[{"class", "name", "color"}]`` of every class the model predicts: the names and
    colours of its data contract, else ``class <c>`` in the VOC colours."""
    contract = predictor.contract
    count = max(2, predictor.num_classes)
    names = [f"class {c}" for c in range(count)]
    if contract is not None and contract.classes == count:
        names = list(contract.class_names)
    table = None if contract is None else contract.color_table()
    colors = palette.class_colors(count, table)
    return [
        {"class": c, "name": names[c], "color": [int(v) for v in colors[c]]} for c in range(count)
    ]


def find_inputs(inputs):
    """The image files of ``inputs``: files as given, and each folder's image files
    (:data:`~sm_pixel_ce.data.IMAGE_SUFFIXES`, sorted by stem; ``DIR/images`` when it exists).

    Args:
        inputs: Paths of files or folders.

    Returns:
        A list of paths, in the order given.

    Raises:
        DataError: A path does not exist, a folder holds no image file, or nothing was found.

    Example:
        >>> find_inputs(["field.tif", "test_data"])   # test_data/images/*
        ['field.tif', 'test_data/images/a.png', 'test_data/images/b.png']
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found = []
    for path in map(os.fspath, inputs):
        if os.path.isfile(path):
            found.append(path)
            continue
        if not os.path.isdir(path):
            raise DataError(f"{path}: no such file or folder.")
        folder = os.path.join(path, "images")
        folder = folder if os.path.isdir(folder) else path
        files = list(list_files(folder, IMAGE_SUFFIXES).values())
        if not files:
            raise DataError(f"{folder}: no image files (expected {', '.join(IMAGE_SUFFIXES)}).")
        found += files
    if not found:
        raise DataError("no input images given.")
    return found


def _stems(paths, files):
    """``{path: stem}``, refusing two inputs of one stem and an output over an input."""
    stems, seen = {}, {}
    inputs = {os.path.abspath(p) for p in paths}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in seen and seen[stem] != path:
            raise ValueError(
                f"two inputs share the file stem {stem!r} ({seen[stem]}, {path}): both masks "
                f"would be {files.mask(stem)}; predict them into different --out folders."
            )
        for output in (files.mask(stem), files.probabilities(stem), files.overlay(stem)):
            if os.path.abspath(output) in inputs:
                raise ValueError(
                    f"--out {files.root} would overwrite the input {output}; choose another "
                    "--out folder."
                )
        seen[stem] = path
        stems[path] = stem
    return stems


def model_input(pixels, dtype, scale=None):
    """Pixels ``(H, W, C)`` as a model takes them: float32, divided by ``scale``, or by
    :data:`~sm_pixel_ce.data.SCALES` of ``dtype`` as ``compare`` reads them.

    The same float32 product as ``tf.image.convert_image_dtype`` (``x * (1 / max)``), made in
    place: one float32 copy of a large image, not two.
    """
    image = np.asarray(pixels).astype(np.float32)
    if scale is not None:
        image /= np.float32(scale)
    elif SCALES[dtype] != 1:
        image *= np.float32(1.0 / SCALES[dtype])
    return image


#: Rows of an image converted at a time when masks, probabilities and overlays are written, so
#: that no int64 or float copy of a whole large image is made.
_ROWS = 256


def labels(probabilities):
    """The mask of ``(H, W, K)`` probabilities: argmax of K, or ``> 0.5`` for one channel;
    uint8, or uint16 beyond 256 classes."""
    if probabilities.shape[-1] == 1:
        return (probabilities[..., 0] > 0.5).astype(np.uint8)
    dtype = np.uint8 if probabilities.shape[-1] <= 256 else np.uint16
    mask = np.empty(probabilities.shape[:2], dtype)
    for row in range(0, len(mask), _ROWS):
        mask[row : row + _ROWS] = np.argmax(probabilities[row : row + _ROWS], axis=-1)
    return mask


def save_probabilities(path, probabilities):
    """Write ``(H, W, K)`` probabilities as a float16 ``.npy``, a block of rows at a time."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16))}
    header.update(fortran_order=False, shape=probabilities.shape)
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        for row in range(0, len(probabilities), _ROWS):
            handle.write(probabilities[row : row + _ROWS].astype(np.float16).tobytes())


def save_overlay(path, picture, mask, num_classes, colors=None):
    """Write :func:`~sm_pixel_ce.inference.palette.overlay` of ``picture`` and ``mask`` as a
    PNG, made a block of rows at a time (it is per pixel), in ``colors`` (the VOC colours when
    None)."""
    blended = np.empty(mask.shape + (3,), np.uint8)
    for row in range(0, len(mask), _ROWS):
        rows = slice(row, row + _ROWS)
        blended[rows] = palette.overlay(
            picture[rows], mask[rows], num_classes=num_classes, colors=colors
        )
    Image.fromarray(blended).save(path)


def progress_bar(total, desc=None):
    """tqdm's bar over the images on stderr: redrawn in place on a terminal; elsewhere (a log
    file) only in a run longer than a minute, then once a minute, as ``compare``'s bar."""
    tty = sys.stderr.isatty()
    return tqdm.tqdm(
        total=total,
        desc=desc,
        file=sys.stderr,
        leave=False,
        delay=0.0 if tty else 60.0,
        mininterval=0.2 if tty else 60.0,
        unit="image",
    )


def predict_files(model, inputs, out, *, log=print, **options):
    """Predict a mask for every image of ``inputs`` and write it to ``out``.

    Every image is read as ``compare`` reads it (:class:`sm_pixel_ce.data.ImageReader`: EXIF
    orientation, bands, TIFF, 16-bit), divided by its type's maximum (or ``scale``), predicted by
    :func:`~sm_pixel_ce.inference.tiling.predict_image` and written at its own size as
    ``out/{stem}.png``: a palette PNG whose pixel values are the class indices (argmax;
    ``> 0.5`` for a one-channel sigmoid model), in the model's colours (its data contract's
    colour table; the VOC colours for the classes it does not colour), with the legend
    ``out/classes.json`` (each class's name and colour). A reading option not given is the
    model's data contract's, and images are sized as it was trained (see :func:`as_trained`).
    Images stream one at a time, the next one read while the current one is predicted. Every
    header is read first, so that a size or option that cannot work stops the run before the
    first prediction.

    Args:
        model: A Keras model, a :class:`~sm_pixel_ce.inference.predictor.Predictor`, or a model
            file (``.keras``, ``.h5``, SavedModel folder, ``.tflite``, ``.onnx``).
        inputs: Image files and folders (see :func:`find_inputs`).
        out: The output folder (made if missing).
        log: Called with each line of progress text. Defaults to ``print``.
        **options: The options of :class:`PredictOptions` (``tile``, ``overlap``, ``tta``,
            ``tta_scales``, ``probabilities``, ``overlay``, ``batch_size``, and the reading
            options ``size``, ``bands``, ``scale``, ``no_exif`` or ``exif``, ``skip_bad``),
            checked there.

    Returns:
        ``{"model", "options", "classes", "images", "written", "skipped", "seconds"}``: the
        predictor's :meth:`~sm_pixel_ce.inference.predictor.Predictor.describe`, the options
        as applied, the legend (see :func:`legend`), per image
        ``{"input", "mask", "probabilities", "overlay", "width", "height", "how", "seconds"}``,
        every file written, ``[{"file", "reason"}]`` of the images skipped, and the wall time.

    Raises:
        ValueError: A bad option, one that contradicts the model's data contract, or one the
            model or an image cannot take (an image smaller than ``tile``, other channels than
            the model's).
        ModelFileError: The model file is missing or unreadable.
        DataError: No input image, or an unreadable one without ``skip_bad`` (naming it).

    Example:
        >>> result = predict_files("unet.keras", ["field.tif"], "masks", tile=512)
        >>> result["written"]
        ['masks/field.png']
    """
    options = PredictOptions(**options)
    log = log or (lambda line: None)
    started = time.perf_counter()
    paths = find_inputs(inputs)
    files = PredictionFiles(out)
    stems = _stems(paths, files)
    predictor = load_predictor(model)
    options = as_trained(predictor, options, log)
    reader = options.read.image_reader()
    paths, skipped = _probe(reader, predictor, paths, options)
    os.makedirs(files.root, exist_ok=True)
    classes = legend(predictor)
    log(
        f"predicting {len(paths)} image(s) with {predictor.kind} model {predictor.name} "
        f"({predictor.num_classes} classes) into {files.root}"
    )
    colors = np.array([row["color"] for row in classes], np.uint8)
    images, written = _predict_all(
        predictor, reader, paths, stems, files, options, log, skipped, colors
    )
    if not images and skipped:
        raise DataError(f"no image could be read: {some(s['file'] for s in skipped)}.")
    with open(files.classes(), "w") as handle:
        json.dump(classes, handle, indent=1)
    written.append(files.classes())
    return {
        "model": predictor.describe(),
        "options": options.flat(),
        "classes": classes,
        "images": images,
        "written": written,
        "skipped": skipped,
        "seconds": time.perf_counter() - started,
    }


def _predict_all(predictor, reader, paths, stems, files, options, log, skipped, colors):
    """Predict and write every image of ``paths``, the next one read while the current one is
    predicted: ``(images, written)``; unreadable images (with ``skip_bad``) join ``skipped``."""
    images, written = [], []
    with ThreadPoolExecutor(1) as pool, progress_bar(len(paths)) as bar:
        scale = options.scale
        pending = pool.submit(_read, reader, paths[0], scale) if paths else None
        for i, path in enumerate(paths):
            try:
                image, info = pending.result()
            except DataError as error:
                image, problem = None, error
            following = paths[i + 1] if i + 1 < len(paths) else None
            pending = None if following is None else pool.submit(_read, reader, following, scale)
            if image is None:
                if not options.skip_bad:
                    raise problem
                skipped.append({"file": path, "reason": str(problem)})
                log(f"  skipped {problem}")
                bar.update(1)
                continue
            record = _predict_one(predictor, image, info, stems[path], files, options, colors)
            del image  # at most two in memory: this one and the next, being read
            images.append({"input": path, **record})
            written += [record[k] for k in ("mask", "probabilities", "overlay") if record[k]]
            bar.update(1)
    return images, written


def _probe(reader, predictor, paths, options):
    """Read every header: ``(readable paths, skipped)``; stop at an image the options or the
    model cannot take."""
    good, skipped = [], []
    for path in paths:
        try:
            info = reader.info(path)
            kind = reader.kind_of(info)
        except DataError as error:
            if not options.skip_bad or _not_skippable(error):
                raise
            skipped.append({"file": path, "reason": str(error)})
            continue
        if kind.channels != predictor.channels:
            raise OptionsMismatch(
                f"{path}: the image gives {kind}, but {predictor.name} takes "
                f"{predictor.channels} channel(s); choose the bands with --bands."
            )
        width, height = info.size(reader.exif)
        plan(
            predictor,
            height,
            width,
            options.tile,
            options.overlap,
            options.size,
            options.tta_scales,
        )
        good.append(path)
    return good, skipped


def _not_skippable(error):
    return isinstance(error, OptionsMismatch)


def _read(reader, path, scale):
    """``(model input, info)`` of one image (in the reading thread)."""
    info = reader.info(path)
    return model_input(reader.read(path), info.dtype, scale), info


def _predict_one(predictor, image, info, stem, files, options, colors):
    started = time.perf_counter()
    height, width = image.shape[:2]
    how = plan(predictor, height, width, options.tile, options.overlap, options.size)
    probabilities = predict_image(predictor, image, size=options.size, **tiling_options(options))
    mask = labels(probabilities)
    record = {
        "mask": files.mask(stem),
        "probabilities": None,
        "overlay": None,
        "width": width,
        "height": height,
        "how": how[0],
    }
    palette.save_mask(record["mask"], mask, colors)
    if options.probabilities:
        record["probabilities"] = files.probabilities(stem)
        save_probabilities(record["probabilities"], probabilities)
    del probabilities
    if options.overlay:
        kind = ImageKind(info.dtype, image.shape[-1])
        if options.scale is not None:
            image *= np.float32(options.scale / SCALES[info.dtype])
        record["overlay"] = files.overlay(stem)
        picture = preview(image[None], kind)[0]
        save_overlay(record["overlay"], picture, mask, max(2, predictor.num_classes), colors)
    record["seconds"] = time.perf_counter() - started
    return record
