"""Measure issue 28 ("the model knows its data"): do ``evaluate`` and ``predict``, given no
reading flags, read a folder as the model was trained, and decode it as Pillow does?

    python examples/data_contract_check.py --out /tmp/dcc

On the project's generated scenes (``sm_pixel_ce.data.make_scenes``) it writes

* ``DIR``: ``images/*.jpg`` (noisy 96x128 photos, JPEG quality 90, larger than the model and not
  square, so that decoding and resizing both matter) and ``masks/*.png`` of class indices;
* ``DIRC``: the same images with RGB colour masks and ``colors.json``, a colour table whose
  ascending (R, G, B) order is not the class order (``--mask-colors auto`` would misnumber it);

trains one small model on each with ``sm-pixel-ce compare --variants cce`` (the data contract
goes into ``model_cce.keras``), and then measures, each CLI job run with no reading flag:

1. ``evaluate`` on ``DIR`` against an independent scoring: Pillow decodes, the same resize as
   ``to_model_input`` (``tf.image.resize``, bilinear, antialiased, 64x64; masks nearest
   neighbour, as ``evaluate`` resizes them), Keras ``model.predict``, a NumPy confusion matrix and
   the mIoU over the classes whose union is not empty;
2. ``predict`` through the ``.keras``, an exported ``.onnx`` and an exported ``.tflite``: the % of
   pixels of the written masks (palette PNGs of class indices, at the images' size) equal to the
   reference (Pillow pixels resized to 64x64, Keras, probabilities resized back bilinearly as
   ``predict`` does, argmax);
3. ``evaluate`` on ``DIRC`` (colours decoded by the model's table) against the NumPy mIoU of the
   masks decoded with ``colors.json``; and again with ``--mask-colors auto``, which with a data
   contract means the model's table.

It prints a Markdown table (and writes it to ``OUT/table.md``, the raw numbers to
``OUT/results.json``). A few minutes on 2 CPU cores.
"""

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
from PIL import Image

#: Class colours of the colour-mask copy, in class order; ascending (R, G, B) gives 2, 5, 1, 4,
#: 0, 6, 3, so numbering the colours found (``auto`` without a contract) would misread them.
COLORS = (
    ("background", (200, 200, 200)),
    ("disc", (30, 144, 255)),
    ("square", (0, 128, 0)),
    ("triangle", (255, 0, 0)),
    ("ring", (128, 64, 128)),
    ("bar", (10, 10, 10)),
    ("cross", (250, 170, 30)),
)
CLASSES = len(COLORS)
HEIGHT, WIDTH = 96, 128  # the images: larger than the model, not square
SIZE = 64  # the model's side


# --- the folders --------------------------------------------------------------------------------


def write_folders(root, count, seed):
    """Write ``root/data`` (JPEG + index masks) and ``root/data_colour`` (JPEG + RGB masks)."""
    from sm_pixel_ce.data import make_scenes

    images, masks = make_scenes(count, size=WIDTH, seed=seed)
    top = (WIDTH - HEIGHT) // 2
    images, masks = images[:, top : top + HEIGHT], masks[:, top : top + HEIGHT]
    rng = np.random.default_rng(seed + 1)
    pixels = images * 255 + rng.normal(0, 6, images.shape)  # sensor-like noise: DCT matters
    pixels = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    lut = np.array([color for _, color in COLORS], np.uint8)
    data, colour = os.path.join(root, "data"), os.path.join(root, "data_colour")
    for folder in (data, colour):
        for sub in ("images", "masks"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
    for i, (image, mask) in enumerate(zip(pixels, masks)):
        stem = f"{i:03d}"
        for folder in (data, colour):
            Image.fromarray(image).save(os.path.join(folder, "images", f"{stem}.jpg"), quality=90)
        Image.fromarray(mask, "L").save(os.path.join(data, "masks", f"{stem}.png"))
        Image.fromarray(lut[mask], "RGB").save(os.path.join(colour, "masks", f"{stem}.png"))
    table = [{"class": c, "name": n, "color": list(rgb)} for c, (n, rgb) in enumerate(COLORS)]
    colors = os.path.join(root, "colors.json")
    with open(colors, "w") as handle:
        json.dump(table, handle, indent=1)
    return data, colour, colors


# --- the CLI ------------------------------------------------------------------------------------


def cli(*args, log=None):
    """Run ``sm-pixel-ce ARGS``; its output, or a ``RuntimeError`` with it."""
    command = ["sm-pixel-ce", *[str(a) for a in args]]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if log is not None:
        log.append(
            {
                "command": " ".join(command),
                "seconds": time.perf_counter() - started,
                "rc": done.returncode,
                "output": output,
            }
        )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{output}")
    return output


def contract_lines(output):
    """The job's one-line messages about the data contract and the sizing."""
    return [
        line.strip()
        for line in output.splitlines()
        if line.strip().startswith(("data contract:", "sizing:", "masks:"))
    ]


# --- the independent reference ------------------------------------------------------------------


def pil_pixels(path):
    """Pillow's decoding, uint8 ``(H, W, 3)``."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def model_input(pixels):
    """Pillow's pixels as the model takes them: divided by 255, resized to SIZE x SIZE as
    ``sm_pixel_ce.data.images.to_model_input`` does (the same TensorFlow call)."""
    import tensorflow as tf

    image = tf.image.convert_image_dtype(pixels, tf.float32)  # x * (1 / 255), as the reader
    image = tf.image.resize(image, (SIZE, SIZE), antialias=True)
    return np.clip(image.numpy(), 0.0, 1.0)


def resized_mask(mask):
    """Class indices resized to SIZE x SIZE with nearest neighbour, as ``evaluate`` does."""
    import tensorflow as tf

    return tf.image.resize(mask[..., None], (SIZE, SIZE), method="nearest").numpy()[..., 0]


def probabilities_of(model, inputs):
    """Keras ``predict``, one image per batch: float32 ``(N, SIZE, SIZE, K)``."""
    return np.asarray(model.predict(np.stack(inputs), batch_size=1, verbose=0), np.float32)


def miou(truth, prediction, classes):
    """mIoU of one confusion matrix over every pixel; a class whose union is empty is left out."""
    truth, prediction = (
        np.concatenate([t.ravel() for t in truth]),
        np.concatenate([p.ravel() for p in prediction]),
    )
    matrix = np.bincount(
        truth.astype(np.int64) * classes + prediction, minlength=classes * classes
    ).reshape(classes, classes)
    intersection = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - intersection
    present = union > 0
    return float(np.mean(intersection[present] / union[present]))


def colour_classes(path, table):
    """A colour mask's classes through ``table`` (every colour must be listed)."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB")).astype(np.int64)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    out = np.full(codes.shape, -1, np.int64)
    for row in table:
        r, g, b = row["color"]
        out[codes == ((r << 16) | (g << 8) | b)] = row["class"]
    if (out < 0).any():
        raise ValueError(f"{path}: a colour not in the table")
    return out.astype(np.uint8)


def evaluated_miou(folder):
    with open(os.path.join(folder, "evaluation.json")) as handle:
        return json.load(handle)["miou"]


# --- the measurements ---------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="work folder (created)")
    parser.add_argument("--images", type=int, default=24, help="image/mask pairs (default: 24)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="scenes' seed (default: 0)")
    args = parser.parse_args()
    started = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    out = lambda *parts: os.path.join(args.out, *parts)  # noqa: E731
    log = []

    data, colour, colors = write_folders(args.out, args.images, args.seed)
    train = ["--classes", CLASSES, "--size", SIZE, "--epochs", args.epochs, "--variants", "cce"]
    cli("compare", "--data", data, *train, "--out", out("R"), log=log)
    cli("compare", "--data", colour, *train, "--mask-colors", colors, "--out", out("RC"), log=log)
    model_path, colour_model_path = out("R", "model_cce.keras"), out("RC", "model_cce.keras")

    import tensorflow as tf

    import sm_pixel_ce

    rows, lines = [], {}

    # 1. evaluate vs Pillow + NumPy
    said = cli("evaluate", model_path, "--data", data, "--out", out("E"), log=log)
    lines["evaluate"] = contract_lines(said)
    model = sm_pixel_ce.load_model(model_path, compile=False)
    images = sorted(glob.glob(os.path.join(data, "images", "*.jpg")))
    stems = [os.path.splitext(os.path.basename(p))[0] for p in images]
    inputs = [model_input(pil_pixels(p)) for p in images]
    probabilities = probabilities_of(model, inputs)
    predicted = [p.argmax(-1) for p in probabilities]
    truth = [
        resized_mask(pil_pixels(os.path.join(data, "masks", f"{s}.png"))[..., 0]) for s in stems
    ]
    reference = miou(truth, predicted, CLASSES)
    cli_miou = evaluated_miou(out("E"))
    rows.append(("evaluate, JPEG + index masks, no flags", cli_miou, reference))

    # 2. predict through .keras, .onnx, .tflite vs Keras on Pillow's pixels
    cli("export", model_path, "--format", "onnx", "--out", out("R", "m.onnx"), log=log)
    cli(
        "export",
        model_path,
        "--format",
        "tflite",
        "--size",
        SIZE,
        "--out",
        out("R", "m.tflite"),
        log=log,
    )
    back = [
        tf.image.resize(p, (HEIGHT, WIDTH), antialias=True).numpy().argmax(-1)
        for p in probabilities
    ]
    agreement = {}
    for name, path in (
        ("keras", model_path),
        ("onnx", out("R", "m.onnx")),
        ("tflite", out("R", "m.tflite")),
    ):
        said = cli(
            "predict", path, os.path.join(data, "images"), "--out", out(f"P_{name}"), log=log
        )
        lines[f"predict {name}"] = contract_lines(said)
        same = total = 0
        for stem, expected in zip(stems, back):
            with Image.open(out(f"P_{name}", f"{stem}.png")) as mask:
                mode, written = mask.mode, np.asarray(mask)
            if mode != "P" or written.shape != expected.shape:
                raise ValueError(f"{name}: {stem}.png is {mode} {written.shape}")
            same += int((written == expected).sum())
            total += expected.size
        agreement[name] = 100.0 * same / total

    # 3. the colour-mask folder
    colour_model = sm_pixel_ce.load_model(colour_model_path, compile=False)
    with open(colors) as handle:
        table = json.load(handle)
    colour_probabilities = probabilities_of(colour_model, inputs)  # the same JPEGs
    colour_truth = [
        resized_mask(colour_classes(os.path.join(colour, "masks", f"{s}.png"), table))
        for s in stems
    ]
    colour_reference = miou(colour_truth, [p.argmax(-1) for p in colour_probabilities], CLASSES)
    said = cli("evaluate", colour_model_path, "--data", colour, "--out", out("EC"), log=log)
    lines["evaluate colour"] = contract_lines(said)
    said = cli(
        "evaluate",
        colour_model_path,
        "--data",
        colour,
        "--mask-colors",
        "auto",
        "--out",
        out("EA"),
        log=log,
    )
    lines["evaluate colour auto"] = contract_lines(said)
    rows.append(("evaluate, colour masks, no flags", evaluated_miou(out("EC")), colour_reference))
    rows.append(
        (
            "evaluate, colour masks, `--mask-colors auto`",
            evaluated_miou(out("EA")),
            colour_reference,
        )
    )

    # Controls, to show the measurements can see a difference. (a) The reading of old main:
    # TensorFlow's default JPEG decoder (the fast DCT) instead of Pillow's.
    def fast_dct(path):
        with open(path, "rb") as handle:
            return tf.io.decode_jpeg(handle.read(), channels=3).numpy()

    fast = [fast_dct(p) for p in images]
    samples = sum(int((f != pil_pixels(p)).sum()) for f, p in zip(fast, images))
    decoded_differ = 100.0 * samples / sum(f.size for f in fast)
    fast_probabilities = probabilities_of(model, [model_input(f) for f in fast])
    fast_miou = miou(truth, [p.argmax(-1) for p in fast_probabilities], CLASSES)
    fast_back = [
        tf.image.resize(p, (HEIGHT, WIDTH), antialias=True).numpy().argmax(-1)
        for p in fast_probabilities
    ]
    fast_same = sum(int((f == b).sum()) for f, b in zip(fast_back, back))
    agreement["control: Keras on TensorFlow's fast-DCT pixels"] = (
        100.0 * fast_same / sum(b.size for b in back)
    )
    rows.append(("control: Keras on fast-DCT pixels (old decoding)", fast_miou, reference))
    # (b) The colour model saved by plain Keras (no data contract): auto numbers the colours in
    # ascending (R, G, B) order, not as training did.
    from sm_pixel_ce.flavor import keras

    bare = out("RC", "model_without_contract.keras")
    keras.models.load_model(colour_model_path, compile=False).save(bare)
    if sm_pixel_ce.data_contract(bare) is not None:
        raise ValueError(f"{bare} still has a data contract")
    said = cli(
        "evaluate", bare, "--data", colour, "--mask-colors", "auto", "--out", out("EN"), log=log
    )
    lines["control: evaluate colour auto, no contract"] = contract_lines(said)
    rows.append(
        (
            "control: colour masks, `--mask-colors auto`, model without contract",
            evaluated_miou(out("EN")),
            colour_reference,
        )
    )
    predicted_share = np.bincount(np.concatenate([b.ravel() for b in back]), minlength=CLASSES)
    predicted_share = predicted_share / predicted_share.sum()

    # The table.
    table_lines = [
        "| job (CLI, no reading flags) | measured mIoU | Pillow + NumPy mIoU | difference |",
        "|---|---:|---:|---:|",
    ]
    for name, measured, expected in rows:
        table_lines.append(
            f"| {name} | {measured:.6f} | {expected:.6f} | {measured - expected:.1e} |"
        )
    table_lines += [
        "",
        "| `predict` through | pixels equal to Keras on Pillow's pixels |",
        "|---|---:|",
    ]
    for name, percent in agreement.items():
        table_lines.append(f"| {name} | {percent:.4f} % |")
    shares = ", ".join(f"{100 * share:.1f}" for share in predicted_share)
    table_lines += [
        "",
        f"Reference prediction, % of pixels per class 0-{CLASSES - 1}: {shares}. "
        f"Fast-DCT pixels: {decoded_differ:.1f} % of samples differ from Pillow's.",
    ]
    seconds = time.perf_counter() - started
    versions = (
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Pillow {Image.__version__}, NumPy {np.__version__}"
    )
    text = "\n".join(table_lines)
    footer = (
        f"{args.images} JPEG images {WIDTH}x{HEIGHT} (quality 90), model {SIZE}x{SIZE}, "
        f"{args.epochs} epochs; {versions}; {os.cpu_count()} CPU cores; {seconds:.0f} s"
    )
    print(text)
    print()
    print(footer)
    print()
    for job, said in lines.items():
        for line in said:
            print(f"{job}: {line}")
    with open(out("table.md"), "w") as handle:
        handle.write(text + "\n\n" + footer + "\n")
    with open(out("results.json"), "w") as handle:
        json.dump(
            {
                "rows": rows,
                "agreement": agreement,
                "lines": lines,
                "seconds": seconds,
                "versions": versions,
                "commands": log,
            },
            handle,
            indent=1,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
