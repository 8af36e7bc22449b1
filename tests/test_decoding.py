"""Every image format the reader takes gives the values Pillow gives for the same file (TIFF:
tifffile's), value by value, eagerly and through ``tf.data``; masks too."""

import imagecodecs
import numpy as np
import pytest
import tensorflow as tf
import tifffile
from PIL import Image, ImageOps

from sm_pixel_ce.data import FolderReader
from sm_pixel_ce.data.images import ImageReader

# TensorFlow's decoders, Pillow and NumPy, no Keras object: the same in both Keras flavours, so
# the Keras 3 process alone runs it.
pytestmark = pytest.mark.one_flavor

# Odd sizes: JPEG's 8x8 blocks and 16x16 MCUs end mid-image, where chroma upsampling differs most.
HEIGHT, WIDTH = 37, 53
JPEGS = {
    "q75_420": dict(quality=75, subsampling=2),
    "q75_422": dict(quality=75, subsampling=1),
    "q75_444": dict(quality=75, subsampling=0),
    "q95_420": dict(quality=95, subsampling=2),
    "q95_444": dict(quality=95, subsampling=0),
    "progressive_420": dict(quality=75, subsampling=2, progressive=True),
    "progressive_444": dict(quality=95, subsampling=0, progressive=True),
}


def _photo(bands=3, seed=0, height=HEIGHT, width=WIDTH, top=255):
    """A photo-like picture: smooth gradients, noise and a sharp-edged block."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    planes = [0.5 + 0.35 * np.sin(6 * x + b) * np.cos(4 * y - 2 * b) for b in range(bands)]
    picture = np.stack(planes, axis=-1) + rng.normal(0, 0.06, (height, width, bands))
    picture[height // 3 : 2 * height // 3, width // 4 : width // 2] += 0.3
    return np.round(np.clip(picture, 0, 1) * top).astype(np.uint8 if top == 255 else np.uint16)


def _pillow(path, mode):
    """Pillow's pixels of ``path`` in ``mode``, turned by EXIF orientation, ``(H, W, C)``."""
    with Image.open(path) as image:
        array = np.asarray(ImageOps.exif_transpose(image).convert(mode))
    return array[..., None] if array.ndim == 2 else array


def _streamed(reader, paths):
    """The images of ``paths`` (one size) through :meth:`ImageReader.graph_decoder` in
    ``tf.data``, as ``FolderReader.image_dataset`` streams them, back in their sample type (a
    resize to the image's own size changes no value)."""
    info = reader.info(paths[0])
    kind = reader.kind_of(info)
    width, height = info.size(reader.exif)
    routes, orientations = reader.elements(paths, kind)
    decode = reader.graph_decoder(kind, height, width, routes, orientations)
    data = tf.data.Dataset.from_tensor_slices((paths, routes, orientations)).map(decode)
    dtype = np.dtype(kind.dtype)
    return [np.round(image.numpy() * kind.scale).astype(dtype) for image in data]


def _assert_read(path, expected, bands=None, exif=True):
    """``ImageReader`` gives ``expected`` for ``path``, eagerly and in ``tf.data``."""
    reader = ImageReader(bands, exif)
    eager = reader.read(path)
    np.testing.assert_array_equal(eager, expected)
    assert eager.dtype == expected.dtype
    (streamed,) = _streamed(reader, [path])
    np.testing.assert_array_equal(streamed, expected)


def _save(tmp_path, name, array, mode=None, **options):
    path = str(tmp_path / name)
    Image.fromarray(array, mode).save(path, **options)
    return path


@pytest.mark.parametrize("name", list(JPEGS))
def test_jpeg_equals_pillow(tmp_path, name):
    path = _save(tmp_path, f"{name}.jpg", _photo(), **JPEGS[name])
    _assert_read(path, _pillow(path, "RGB"))


def test_the_jpegs_exercise_the_dct(tmp_path):
    """TensorFlow's default fast DCT differs from Pillow on these pictures, so the equality
    above holds because of the accurate DCT, not because the pictures are too plain to tell."""
    for name, options in JPEGS.items():
        path = _save(tmp_path, f"{name}.jpg", _photo(), **options)
        fast = tf.io.decode_jpeg(tf.io.read_file(path), dct_method="INTEGER_FAST").numpy()
        assert (fast != _pillow(path, "RGB")).mean() > 0.1, name


@pytest.mark.parametrize("quality", [75, 95])
def test_greyscale_jpeg_equals_pillow(tmp_path, quality):
    path = _save(tmp_path, "grey.jpg", _photo(1)[..., 0], quality=quality)
    _assert_read(path, _pillow(path, "RGB"))
    _assert_read(path, _pillow(path, "L"), bands=(0,))


def test_cmyk_jpeg_equals_pillow(tmp_path):
    path = str(tmp_path / "cmyk.jpg")
    Image.fromarray(_photo(4), "CMYK").save(path, quality=90)
    _assert_read(path, _pillow(path, "RGB"))


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_turned_jpeg_equals_pillows_exif_transpose(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path, "turned.jpg", _photo(), quality=90, exif=exif)
    expected = _pillow(path, "RGB")
    assert expected.shape[:2] == ((WIDTH, HEIGHT) if orientation >= 5 else (HEIGHT, WIDTH))
    _assert_read(path, expected)
    with Image.open(path) as image:
        np.testing.assert_array_equal(
            ImageReader(exif=False).read(path), np.asarray(image.convert("RGB"))
        )


@pytest.mark.parametrize(
    "mode, bands, options",
    [
        ("1", 1, {}),
        ("L", 1, {}),
        ("L", 1, {"transparency": 7}),
        ("LA", 2, {}),
        ("RGB", 3, {}),
        ("RGB", 3, {"transparency": (1, 2, 3)}),
        ("RGBA", 4, {}),
        ("P", 3, {}),
        ("P", 4, {"transparency": 5}),
    ],
)
def test_8_bit_png_equals_pillow(tmp_path, mode, bands, options):
    picture = Image.fromarray(_photo(4))
    if mode == "P":
        image = picture.convert("RGB").quantize(64)
    else:
        image = picture.convert("RGBA" if mode == "RGBA" else "RGB").convert(mode)
    path = str(tmp_path / "a.png")
    image.save(path, **options)
    _assert_read(path, _pillow(path, "RGB"))
    own = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[bands]
    _assert_read(path, _pillow(path, own), bands=tuple(range(bands)))


def test_16_bit_grey_png_equals_pillow(tmp_path):
    path = _save(tmp_path, "grey16.png", _photo(1, top=65535)[..., 0])
    with Image.open(path) as image:
        assert image.mode == "I;16"
        pillow = np.asarray(image)[..., None]
    _assert_read(path, pillow, bands=(0,))
    _assert_read(path, np.repeat(pillow, 3, axis=-1))


@pytest.mark.parametrize("bands", [2, 3, 4])
def test_16_bit_colour_png_gives_its_samples_and_pillows_upper_bytes(tmp_path, bands):
    stored = _photo(bands, top=65535)
    path = str(tmp_path / "colour16.png")
    with open(path, "wb") as f:
        f.write(imagecodecs.png_encode(stored))
    _assert_read(path, stored, bands=tuple(range(bands)))
    # Pillow reads only each sample's upper 8 bits (grey + alpha as RGBA).
    upper = ImageReader().read(path) >> 8
    np.testing.assert_array_equal(upper, _pillow(path, "RGB"))


@pytest.mark.parametrize("lossless", [False, True])
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_webp_equals_pillow(tmp_path, lossless, mode):
    path = _save(tmp_path, "a.webp", _photo(len(mode)), mode, quality=80, lossless=lossless)
    _assert_read(path, _pillow(path, "RGB"))
    _assert_read(path, _pillow(path, mode), bands=tuple(range(len(mode))))


@pytest.mark.parametrize("mode", ["RGB", "L", "P"])
def test_bmp_equals_pillow(tmp_path, mode):
    path = str(tmp_path / "a.bmp")
    Image.fromarray(_photo()).convert(mode).save(path)
    _assert_read(path, _pillow(path, "RGB"))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_tiff_equals_tifffile(tmp_path, dtype):
    stored = _photo(4, top=65535).astype(dtype)
    path = str(tmp_path / "a.tif")
    tifffile.imwrite(path, stored, compression="zlib")
    _assert_read(path, tifffile.imread(path), bands=(0, 1, 2, 3))


def test_a_mixed_folder_streams_pillows_values_through_every_route(tmp_path):
    """JPEG, PNG, WebP and BMP in one ``tf.data`` graph (its decoders chosen per file), with
    mixed EXIF orientations: each image as Pillow gives it."""
    side = 45  # square, so that every orientation streams at one size
    paths = []
    for orientation, suffix in zip(range(1, 9), [".jpg", ".png", ".webp", ".bmp"] * 2):
        exif = Image.Exif()
        exif[0x0112] = orientation
        picture = Image.fromarray(_photo(seed=orientation, height=side, width=side))
        path = str(tmp_path / f"{orientation}{suffix}")
        picture.save(path, **({} if suffix == ".bmp" else {"exif": exif}))
        paths.append(path)
    reader = ImageReader()
    assert len(set(reader.elements(paths, reader.kind_of(reader.info(paths[0])))[0])) == 3
    for path, streamed in zip(paths, _streamed(reader, paths)):
        np.testing.assert_array_equal(streamed, _pillow(path, "RGB"), err_msg=path)
    images = FolderReader().image_dataset(paths, side)
    for path, image in zip(paths, images):
        expected = _pillow(path, "RGB")
        np.testing.assert_array_equal(np.round(image.numpy() * 255).astype(np.uint8), expected)


@pytest.mark.parametrize("mode", ["L", "P", "I;16"])
def test_masks_equal_pillow(tmp_path, mode):
    values = (_photo(1, top=65535)[..., 0] // 4096).astype(np.uint16)
    image = Image.fromarray(values) if mode == "I;16" else Image.fromarray(values.astype(np.uint8))
    if mode == "P":
        image = image.convert("P")
        image.putpalette([200, 10, 10, 10, 200, 10] * 128)
    path = str(tmp_path / "mask.png")
    image.save(path)
    with Image.open(path) as saved:
        assert saved.mode == mode
        expected = np.asarray(saved)
    reader = FolderReader(classes=16)
    np.testing.assert_array_equal(reader.read_mask(path), expected)
    (streamed,) = reader.mask_dataset([(None, path)], HEIGHT)
    resized = tf.image.resize(expected[..., None], (HEIGHT, HEIGHT), method="nearest")
    np.testing.assert_array_equal(streamed.numpy(), resized.numpy()[..., 0])
