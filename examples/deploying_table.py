"""Measure the "Deploying" table: one trained U-Net exported to every format and quantization,
each file run in its own runtime against Keras ``predict`` (``sm_pixel_ce.export``'s check).

    python examples/deploying_table.py --out examples/deploying.md

Trains a U-Net (resnet18, ``input_shape=(None, None, 3)``, 7 classes) with ``pixel_cce`` on
generated scenes, writes held-out scenes with their masks as a ``--data``-style calibration folder,
then exports at ``--size`` and writes a Markdown table (and the raw reports as JSON lines).
"""

import argparse
import json
import os
import platform
import tempfile

import sm_pixel_ce
from sm_pixel_ce.data import CLASS_NAMES, NUM_CLASSES, make_scenes
from sm_pixel_ce.data.scenes import MASK_COLORS
from sm_pixel_ce.data.writing import write_folder
from sm_pixel_ce.flavor import KERAS_FLAVOR, keras

EXPORTS = (
    ("tflite", None),
    ("tflite", "float16"),
    ("tflite", "dynamic"),
    ("tflite", "int8"),
    ("onnx", None),
    ("onnx", "float16"),
    ("onnx", "dynamic"),
    ("onnx", "int8"),
    ("saved_model", None),
)
SUFFIX = {"tflite": ".tflite", "onnx": ".onnx", "saved_model": ""}


def replace_generated(page, generated):
    """``page`` with its generated part (from the top to the last row of its table) replaced by
    ``generated``: the hand-written sections below the table are kept.

    Example:
        >>> replace_generated("# T\n\n| Format |\n|---|\n| a |\n\n## Notes\n", "# T\n\n| b |\n")
        '# T\n\n| b |\n\n## Notes\n'
    """
    lines = page.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("| Format |")), None)
    if start is None:
        return generated
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return generated + "".join(lines[end:])


def _number(value, spec):
    # An mIoU is None when the masks hold no class of the model (undefined).
    return "-" if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=64)
    parser.add_argument("--train-images", type=int, default=96)
    parser.add_argument("--calibration-images", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="examples/deploying.md")
    args = parser.parse_args()
    import segmentation_models as sm  # after sm_pixel_ce, which chooses its tf.keras framework

    keras.utils.set_random_seed(0)
    model = sm.Unet(
        "resnet18",
        encoder_weights=None,
        classes=NUM_CLASSES,
        activation="pixel_softmax",
        input_shape=(None, None, 3),
    )
    model.compile(keras.optimizers.Adam(1e-3), loss="pixel_cce")
    images, masks = make_scenes(args.train_images, size=args.train_size, seed=0)
    model.fit(images, masks, epochs=args.epochs, batch_size=8, verbose=2)
    rows, reports = [], []
    with tempfile.TemporaryDirectory(prefix="deploying_") as tmp:
        saved = os.path.join(tmp, "unet.keras")
        model.save(saved)
        calibration = os.path.join(tmp, "calibration")
        scenes = make_scenes(args.calibration_images, size=args.size, seed=1)
        write_folder(calibration, *scenes, CLASS_NAMES, MASK_COLORS)
        for format, quantize in EXPORTS:
            out = os.path.join(tmp, f"unet_{quantize or 'float32'}{SUFFIX[format]}")
            if format == "saved_model":
                out = os.path.join(tmp, "serving")
            report = sm_pixel_ce.export(
                saved,
                out,
                format=format,
                size=args.size,
                quantize=quantize,
                calibration=calibration,
            )
            print(report.format_text(), flush=True)
            reports.append(report.to_dict())
            miou = " -> ".join(_number(v, ".3f") for v in (report.miou_keras, report.miou_export))
            rows.append(
                f"| {format} | {quantize or 'float32'} | {report.runtime} | "
                f"{report.file_bytes / 1e6:.1f} MB | {report.runtime_ms_per_image:.1f} ms | "
                f"{report.keras_ms_per_image:.1f} ms | {report.max_difference:.1e} | "
                f"{100 * report.argmax_agreement:.2f}% | "
                f"{miou} ({_number(report.miou_change, '+.3f')}) | "
                f"{'ok' if report.passed else ('reported' if report.passed is None else 'FAIL')} |"
            )
    header = (
        f"U-Net resnet18 (7 classes, {model.count_params() / 1e6:.1f} M parameters), trained "
        f"{args.epochs} epochs with `pixel_cce` on {args.train_images} generated scenes "
        f"({args.train_size} px), exported "
        f"at {args.size}x{args.size} from a `.keras` file with `sm_pixel_ce.export`; checked on "
        f"{args.calibration_images} held-out scenes (the `--calibration` folder, with masks). "
        f"{KERAS_FLAVOR}, TensorFlow and Keras predict on CPU ({platform.machine()}, "
        f"{os.cpu_count()} cores, shared). Latency: median of 5 calls on the whole batch, per "
        "image. Max diff: largest |probability difference| from Keras. Float32 exports must be "
        "within 1e-4 (`ok`); quantized ones are reported.\n\n"
        "| Format | Weights | Runtime | File | Latency/image | Keras predict/image | Max diff | "
        "Argmax agreement | mIoU Keras -> export | Check |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    table = header + "\n".join(rows) + "\n"
    generated = (
        "# Deploying: formats x runtimes, measured\n\n"
        f"Measured with `python examples/deploying_table.py --out {args.out}`.\n\n{table}"
    )
    text = replace_generated(open(args.out).read() if os.path.exists(args.out) else "", generated)
    with open(args.out, "w") as handle:
        handle.write(text)
    with open(os.path.splitext(args.out)[0] + "_reports.jsonl", "w") as handle:
        for report in reports:
            handle.write(json.dumps(report) + "\n")
    print(table)


if __name__ == "__main__":
    main()
