"""Images as every job reads them: PNG, JPEG, BMP, WebP and TIFF; uint8, uint16 or float32;
1 to N bands; turned by their EXIF orientation as viewers show them.

**One scaling convention.** A model sees an image's pixel values divided by its sample type's
maximum, :data:`SCALES` (255 for uint8, 65535 for uint16; float32 data as they are), resized
bilinearly with antialiasing. uint8 images are read exactly as ``compare`` always read them.
For uint16 and float32 data a model that ``compare`` saves also standardises each band as its
first layer (see :meth:`~sm_pixel_ce.data.FolderSource.normalization`), so the file needs only
this reading, no statistics kept elsewhere.

**Bands.** Without ``bands``, an image gives 3 channels as ``compare`` always read them: grey is
repeated to RGB and alpha dropped (PNG, JPEG, BMP, WebP; 16-bit PNGs alike); a TIFF gives all
its bands but alpha, a single band repeated to RGB. ``bands=(0, 1, 2)`` takes those bands
(0-based, of the file's own bands: a palette counts as RGB) and nothing else, so
``bands=(0,)`` reads a grey image as one channel.

**Decoders.** Every format gives the values Pillow gives for the same file, in the eager
reader and in ``tf.data`` alike; TIFF the values ``tifffile`` gives. TensorFlow decodes JPEG
with the accurate integer DCT and libjpeg-turbo's default ("fancy") chroma upsampling, as
Pillow does (TensorFlow's default, the fast DCT, differs from Pillow on most pixels of a photo,
by a few levels), 8-bit PNG, WebP, and 16-bit PNG to the samples stored (Pillow gives a
16-bit grey PNG the same, a colour one only their upper 8 bits). Pillow reads BMP, CMYK JPEG
and WebP with alpha (TensorFlow rounds CMYK otherwise, and cannot drop a WebP's alpha), and
``tifffile`` (with ``imagecodecs`` for compressed files) TIFF. EXIF orientation (JPEG, PNG,
WebP) and the TIFF Orientation tag are applied as Pillow's ``ImageOps.exif_transpose`` does.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from .._messages import first_line
from .errors import DataError, OptionsMismatch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
TIFF_SUFFIXES = (".tif", ".tiff")
#: Sample type -> the value its pixels are divided by before they enter a model.
SCALES = {"uint8": 255, "uint16": 65535, "float32": 1}
#: EXIF orientation -> (transpose first?, then flip these axes): what turns the stored pixels
#: into the picture a viewer shows (the transposes of Pillow's ``ImageOps.exif_transpose``).
_ORIENTATIONS = {
    1: (False, ()),
    2: (False, (1,)),
    3: (False, (0, 1)),
    4: (False, (0,)),
    5: (True, ()),
    6: (True, (1,)),
    7: (True, (0, 1)),
    8: (True, (0,)),
}
#: How a viewer turns a stored image of each EXIF orientation, for messages.
TURNS = {
    1: "as stored",
    2: "mirrored",
    3: "rotated 180°",
    4: "flipped upside down",
    5: "mirrored and rotated 90° anticlockwise",
    6: "rotated 90° clockwise",
    7: "mirrored and rotated 90° clockwise",
    8: "rotated 90° anticlockwise",
}
#: The EXIF tag of the orientation (also the TIFF Orientation tag, 274).
EXIF_ORIENTATION = 0x0112
# Decoders: TensorFlow's decode_image (8-bit PNG, WebP), its JPEG decoder with the accurate DCT,
# its 16-bit PNG decoder, or Python (tifffile for TIFF, Pillow for the rest) inside
# tf.numpy_function.
_ROUTES = range(4)
ROUTE_TF, ROUTE_JPEG, ROUTE_PNG16, ROUTE_PYTHON = _ROUTES
# TensorFlow decodes grey and RGB JPEGs: its CMYK to RGB rounds otherwise than Pillow's.
_JPEG_FORMATS = ("JPEG", "MPO")
_TF_FORMATS = ("PNG", "WEBP")
# Pillow mode -> (bands, sample type), as the decoders give them (a palette as RGB).
_MODES = {
    "1": (1, "uint8"),
    "L": (1, "uint8"),
    "LA": (2, "uint8"),
    "La": (2, "uint8"),
    "P": (3, "uint8"),
    "PA": (4, "uint8"),
    "RGB": (3, "uint8"),
    "RGBA": (4, "uint8"),
    "RGBa": (4, "uint8"),
    "RGBX": (3, "uint8"),
    "CMYK": (3, "uint8"),
    "YCbCr": (3, "uint8"),
    "I;16": (1, "uint16"),
    "I;16L": (1, "uint16"),
    "I;16B": (1, "uint16"),
    "I;16N": (1, "uint16"),
    "F": (1, "float32"),
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> bands (3: palette, as RGB).
_PNG_BANDS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


@dataclasses.dataclass(frozen=True)
class ImageKind:
    """What a folder's images give a model: their sample type and channel count.

    Attributes:
        dtype: ``"uint8"``, ``"uint16"`` or ``"float32"``.
        channels: Channels after the band choice.
    """

    dtype: str
    channels: int

    @property
    def scale(self):
        """The value pixels are divided by (:data:`SCALES`)."""
        return SCALES[self.dtype]

    @property
    def standardised(self):
        """Whether ``compare``'s models standardise these images per band (uint16, float32)."""
        return self.dtype != "uint8"

    def __str__(self):
        return f"{self.channels} band(s) of {self.dtype}"


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """One image file as its header describes it (see :func:`probe_image`).

    Attributes:
        path: The file.
        format: Pillow's format name (``"PNG"``, ``"JPEG"``, ...) or ``"TIFF"``.
        width, height: Pixels as stored.
        bands: Bands as stored (a palette counted as RGB, or RGBA with transparency).
        dtype: Sample type: ``"uint8"``, ``"uint16"`` or ``"float32"``.
        orientation: EXIF (or TIFF) orientation, 1 to 8; 1 when there is none.
        alpha: Indices of the alpha bands (dropped without ``bands``).
        mode: Pillow's mode (``"RGB"``, ``"CMYK"``, ...); ``""`` for a TIFF.
    """

    path: str
    format: str
    width: int
    height: int
    bands: int
    dtype: str
    orientation: int = 1
    alpha: tuple = ()
    mode: str = ""

    @property
    def route(self):
        """Which decoder reads it: ``ROUTE_TF``, ``ROUTE_JPEG``, ``ROUTE_PNG16`` or
        ``ROUTE_PYTHON``."""
        if self.format == "PNG" and self.dtype == "uint16":
            return ROUTE_PNG16
        if self.format in _JPEG_FORMATS and self.mode in ("L", "RGB"):
            return ROUTE_JPEG
        webp_alpha = self.format == "WEBP" and self.alpha  # TensorFlow decodes it to RGBA only
        if self.format in _TF_FORMATS and self.dtype == "uint8" and not webp_alpha:
            return ROUTE_TF
        return ROUTE_PYTHON

    def size(self, exif=True):
        """``(width, height)`` as a viewer shows it (``exif``), or as stored."""
        if exif and self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height

    def default_bands(self):
        """The bands taken without ``bands``: RGB for grey and colour images, every band but
        alpha of a TIFF (one band repeated to RGB)."""
        if self.format != "TIFF":
            return (0, 0, 0) if self.bands < 3 else (0, 1, 2)
        data = tuple(b for b in range(self.bands) if b not in self.alpha)
        return (data[0],) * 3 if len(data) == 1 else data


def parse_bands(text):
    """``"0,1,2"`` -> ``(0, 1, 2)``; None or ``""`` -> None.

    Raises:
        ValueError: Not comma-separated integers >= 0.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if not isinstance(text, str):
        values = tuple(text)
    else:
        try:
            values = tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            values = ()
    if not values or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in values):
        raise ValueError(
            "--bands must be comma-separated band indices counted from 0, e.g. 0,1,2; "
            f"received {text!r}."
        )
    return tuple(int(v) for v in values)


def orient(array, orientation):
    """``array`` ``(H, W, ...)`` (NumPy or a tensor) turned as a viewer shows an image of EXIF
    ``orientation`` (Pillow's ``ImageOps.exif_transpose``)."""
    transpose, flips = _ORIENTATIONS.get(int(orientation), (False, ()))
    if isinstance(array, np.ndarray):
        if transpose:
            array = array.swapaxes(0, 1)
        return np.flip(array, flips) if flips else array
    if transpose:
        rank = array.shape.rank
        array = tf.transpose(array, [1, 0, *range(2, rank)])
    return tf.reverse(array, flips) if flips else array


def probe_image(path, verify=False):
    """Describe an image file from its header; with ``verify``, also decode every byte.

    Args:
        path: The file (a suffix of :data:`IMAGE_SUFFIXES`).
        verify: Decode the whole file, so that a damaged one fails here. Defaults to False.

    Returns:
        An :class:`ImageInfo`.

    Raises:
        DataError: The file cannot be read or decoded, or its sample type is not uint8,
            uint16 or float32 (one line naming it).

    Example:
        >>> probe_image("my_data/images/a.tif")
        ImageInfo(path='my_data/images/a.tif', format='TIFF', width=128, height=128, bands=4,
                  dtype='uint16', orientation=1, alpha=(), mode='')
    """
    path = os.fspath(path)
    try:
        if os.path.splitext(path)[1].lower() in TIFF_SUFFIXES:
            return _probe_tiff(path, verify)
        return _probe_pil(path, verify)
    except DataError:
        raise
    except Exception as error:  # Pillow and tifffile raise many types for a damaged file
        raise DataError(f"{path}: cannot decode the image ({first_line(error)}).") from None


def _probe_pil(path, verify):
    from PIL import Image

    with Image.open(path) as image:
        if verify:
            image.load()  # decodes every byte: a truncated file fails here, not mid-training
        mode, form, (width, height) = image.mode, image.format, image.size
        if form == "PNG" and not verify and "exif" not in image.info:
            orientation = 1  # Pillow would decode the whole PNG to look for a late eXIf chunk
        else:
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        transparency = "transparency" in image.info
    if mode not in _MODES:
        raise DataError(
            f"{path}: cannot read an image of mode {mode}; expected grey, RGB(A), palette or "
            "16-bit grey images."
        )
    bands, dtype = _MODES[mode]
    if form == "PNG":
        with open(path, "rb") as f:
            header = f.read(26)
        if header[:8] == _PNG_SIGNATURE and header[24] == 16:
            bands, dtype = _PNG_BANDS.get(header[25], bands), "uint16"
    if mode == "P" and transparency:
        bands = 4
    alpha = (bands - 1,) if bands in (2, 4) else ()  # grey + alpha, RGBA
    orientation = int(orientation) if orientation in _ORIENTATIONS else 1
    return ImageInfo(path, form, width, height, bands, dtype, orientation, alpha, mode)


def _tiff_layout(path, series):
    """``(height, width, bands, planar)`` of a TIFF series: Y x X, with bands last (YXS) or
    first (SYX, or one page per band)."""
    axes, shape = series.axes, series.shape
    kept = [(a, n) for a, n in zip(axes, shape) if n != 1 or a in "YX"]
    axes, shape = "".join(a for a, _ in kept), tuple(n for _, n in kept)
    if axes == "YX":
        return shape[0], shape[1], 1, False
    if len(axes) == 3 and axes.endswith("YX"):
        return shape[1], shape[2], shape[0], True
    if len(axes) == 3 and axes.startswith("YX"):
        return shape[0], shape[1], shape[2], False
    raise DataError(
        f"{path}: a TIFF of axes {series.axes} {series.shape}; expected one image of Y x X "
        "pixels with its bands."
    )


def _tiff_dtype(path, dtype):
    if dtype in (np.uint8, np.uint16, np.float32):
        return np.dtype(dtype).name
    if np.issubdtype(dtype, np.floating):
        return "float32"
    if dtype == np.bool_:
        return "uint8"
    raise DataError(
        f"{path}: TIFF samples of type {np.dtype(dtype).name} are not supported; expected "
        "uint8, uint16 or float32."
    )


def _probe_tiff(path, verify):
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        page = tiff.pages[0]
        height, width, bands, _ = _tiff_layout(path, series)
        dtype = _tiff_dtype(path, series.dtype)
        extras = tuple(int(e) for e in (page.extrasamples or ()))
        tag = page.tags.get("Orientation")
        if verify:
            series.asarray()
    # Extra samples are the last ones; 1 and 2 are associated and unassociated alpha.
    first = bands - len(extras)
    alpha = tuple(first + i for i, e in enumerate(extras) if e in (1, 2) and first + i >= 0)
    orientation = int(tag.value) if tag is not None and tag.value in _ORIENTATIONS else 1
    return ImageInfo(path, "TIFF", width, height, bands, dtype, orientation, alpha)


def _read_tiff(path):
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        _, _, _, planar = _tiff_layout(path, series)
        array = np.asarray(series.asarray())
    array = array.reshape([n for a, n in zip(series.axes, series.shape) if n != 1 or a in "YX"])
    if array.ndim == 2:
        array = array[..., None]
    elif planar:
        array = np.moveaxis(array, 0, -1)
    return array


def _read_pil(path):
    from PIL import Image

    with Image.open(path) as image:
        mode = image.mode
        if mode == "1":
            image = image.convert("L")
        elif mode in ("P", "PA"):
            rgba = mode == "PA" or "transparency" in image.info
            image = image.convert("RGBA" if rgba else "RGB")
        elif mode in ("CMYK", "YCbCr", "RGBX"):
            image = image.convert("RGB")
        array = np.asarray(image)
    if mode.startswith("I;16"):
        array = array.astype(np.uint16)
    return array[..., None] if array.ndim == 2 else array


class ImageReader:
    """How images are read: the band choice and whether EXIF orientation applies.

    Probes are cached by path, so a folder checked once is not probed again when it streams.

    Args:
        bands: Band indices to take (0-based), or None for :meth:`ImageInfo.default_bands`.
            Defaults to None.
        exif: Turn images as their EXIF orientation says, as viewers do. Defaults to True.

    Example:
        >>> reader = ImageReader(bands=(0, 1, 2, 3))
        >>> reader.read("my_data/images/a.tif").shape, reader.read("my_data/images/a.tif").dtype
        ((128, 128, 4), dtype('uint16'))
    """

    def __init__(self, bands=None, exif=True):
        self.bands = parse_bands(bands)
        self.exif = bool(exif)
        self._infos = {}

    def info(self, path, verify=False):
        """:func:`probe_image` of ``path``, cached (a verified probe is kept as such)."""
        path = os.fspath(path)
        known = self._infos.get(path)
        if known is not None and (known[1] or not verify):
            return known[0]
        info = probe_image(path, verify)
        self._infos[path] = (info, verify)
        return info

    def orientation(self, info):
        """The orientation applied to ``info``'s image: its own, or 1 without ``exif``."""
        return info.orientation if self.exif else 1

    def bands_of(self, info):
        """The band indices taken from ``info``'s image.

        Raises:
            OptionsMismatch: ``bands`` asks for a band the image does not have.
        """
        if self.bands is None:
            return info.default_bands()
        missing = [b for b in self.bands if b >= info.bands]
        if missing:
            raise OptionsMismatch(
                f"{info.path}: --bands {','.join(map(str, self.bands))} asks for band "
                f"{missing[0]}, but the image has {info.bands} band(s) "
                f"(0-{info.bands - 1}; a palette counts as RGB)."
            )
        return self.bands

    def kind_of(self, info):
        """The :class:`ImageKind` ``info``'s image gives."""
        return ImageKind(info.dtype, len(self.bands_of(info)))

    def read(self, path):
        """An image's pixels as the model sees them before scaling: ``(H, W, C)`` of its
        sample type, turned by its EXIF orientation and with the bands chosen.

        Raises:
            DataError: The file cannot be decoded, or has not the bands asked for.
        """
        info = self.info(path)
        if info.route == ROUTE_PYTHON:
            return self._python(info)
        self.bands_of(info)
        try:
            image = self._tensorflow(tf.constant(info.path), info.route)
            return orient(image, self.orientation(info)).numpy()
        except (tf.errors.OpError, ValueError) as error:
            raise DataError(
                f"{info.path}: cannot decode the image ({first_line(error)})."
            ) from None

    def decode(self, path, height, width):
        """An image file as a model takes it: float32 ``(height, width, C)``, its pixel values
        divided by :data:`SCALES` of its sample type, resized bilinearly with antialiasing.

        Raises:
            DataError: The file cannot be decoded, or has not the bands asked for.
        """
        info = self.info(path)
        return to_model_input(tf.constant(self.read(path)), info.dtype, height, width)

    def _tensorflow(self, path, route):
        """Decode with TensorFlow, to the values Pillow gives: JPEG with the accurate DCT (the
        default fast one differs from Pillow), 8-bit PNG and WebP, 16-bit PNG."""
        data = tf.io.read_file(path)
        channels = 3 if self.bands is None else 0
        if route == ROUTE_JPEG:
            image = tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")
        elif route == ROUTE_PNG16:
            image = tf.io.decode_png(data, channels=channels, dtype=tf.uint16)
        else:
            image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        return image if self.bands is None else tf.gather(image, self.bands, axis=-1)

    def _python(self, info):
        tiff = info.format == "TIFF"
        try:
            array = _read_tiff(info.path) if tiff else _read_pil(info.path)
        except Exception as error:  # Pillow and tifffile raise many types for a damaged file
            raise DataError(
                f"{info.path}: cannot decode the image ({first_line(error)})."
            ) from None
        if array.dtype != np.dtype(info.dtype):
            array = array.astype(info.dtype)
        bands = self.bands_of(info)
        if array.shape[-1] <= max(bands):
            raise DataError(
                f"{info.path}: decoded {array.shape[-1]} band(s), expected {info.bands}."
            )
        array = orient(array[..., list(bands)], self.orientation(info))
        return np.ascontiguousarray(array)

    def elements(self, paths, kind):
        """Per image, the decoder and the orientation that :meth:`graph_decoder` applies:
        ``(routes, orientations)``. An image whose probe fails, or that is not of ``kind``,
        goes to the Python decoder, which names it when it is read."""
        routes, orientations = [], []
        for path in paths:
            try:
                info = self.info(path)
            except DataError:
                routes.append(ROUTE_PYTHON)
                orientations.append(1)
                continue
            route = info.route
            if info.dtype != kind.dtype:
                route = ROUTE_PYTHON
            routes.append(route)
            orientations.append(1 if route == ROUTE_PYTHON else self.orientation(info))
        return routes, orientations

    def graph_decoder(self, kind, height, width, routes, orientations):
        """A function ``(path, route, orientation) -> image`` for ``tf.data``: float32
        ``(height, width, kind.channels)`` as :meth:`decode` gives it.

        Only the decoders and orientations found in ``routes`` and ``orientations`` (see
        :meth:`elements`, which sends an image of another kind to the Python decoder) are built
        into the graph: a folder of 8-bit PNGs upright gets ``compare``'s decoding alone.
        """
        dtype = tf.as_dtype(kind.dtype)

        def python(path):
            image = tf.numpy_function(
                lambda p: self._python_for_dataset(p, kind), [path], dtype, stateful=False
            )
            image.set_shape((None, None, kind.channels))
            return image

        order = sorted(set(routes)) or [ROUTE_PYTHON]
        decoders = [
            python if r == ROUTE_PYTHON else (lambda p, r=r: self._tensorflow(p, r)) for r in order
        ]
        turned = [1, *sorted(set(orientations) - {1})]
        # tf.switch_case takes branches 0..n-1: each route and orientation's branch.
        route_branch = tf.constant([order.index(r) if r in order else 0 for r in _ROUTES])
        turn_branch = tf.constant([turned.index(o) if o in turned else 0 for o in range(9)])

        def decode(path, route, orientation):
            if len(decoders) == 1:
                image = decoders[0](path)
            else:
                image = tf.switch_case(
                    route_branch[route], [(lambda f=f: f(path)) for f in decoders]
                )
            if len(turned) > 1:
                image = tf.switch_case(
                    turn_branch[orientation], [(lambda o=o: orient(image, o)) for o in turned]
                )
            return to_model_input(image, kind.dtype, height, width)

        return decode

    def _python_for_dataset(self, path, kind):
        info = self.info(path.decode() if isinstance(path, bytes) else str(path))
        if self.kind_of(info) != kind:
            raise DataError(
                f"{info.path}: {self.kind_of(info)}, but the other images give {kind}; every "
                "image must give the same bands and sample type (choose bands with --bands)."
            )
        return self._python(info)


def to_model_input(image, dtype, height, width):
    """Pixels ``(H, W, C)`` of sample type ``dtype`` as a model takes them: divided by
    :data:`SCALES` (``convert_image_dtype``), resized bilinearly with antialiasing to
    ``(height, width)``; clipped to [0, 1] unless float data."""
    channels = image.shape[-1]
    image = tf.image.resize(
        tf.image.convert_image_dtype(image, tf.float32), (height, width), antialias=True
    )
    image.set_shape((height, width, channels))
    return image if dtype == "float32" else tf.clip_by_value(image, 0.0, 1.0)


def preview(images, kind):
    """Model inputs ``(N, H, W, C)`` as RGB pictures in [0, 1]: the first three bands (one band
    as grey); uint16 and float data stretched per band between the 2nd and 98th percentile of
    ``images``. 8-bit RGB images are returned as they are.

    Args:
        images: float32 ``(N, H, W, C)``, as a data source streams them.
        kind: Their :class:`ImageKind`.

    Returns:
        float32 ``(N, H, W, 3)``.
    """
    images = np.asarray(images, np.float32)
    if kind.dtype == "uint8" and images.shape[-1] == 3:
        return images
    take = [0, 1, 2] if images.shape[-1] >= 3 else [0, 0, 0]
    pictures = images[..., take]
    if kind.dtype != "uint8":
        low = np.percentile(pictures, 2, axis=(0, 1, 2))
        high = np.percentile(pictures, 98, axis=(0, 1, 2))
        pictures = (pictures - low) / np.where(high > low, high - low, 1.0)
    return np.clip(pictures, 0.0, 1.0).astype(np.float32)
