"""``sm_pixel_ce.export`` and ``sm-pixel-ce export``: each exported file is run here in its own
runtime (ai_edge_litert, onnxruntime, TensorFlow alone in a fresh process) on inputs the check did
not see, against Keras ``predict``; the check itself must fail on a file that disagrees.

One tiny U-Net (mobilenetv2, small decoder, ``None`` sizes, random weights) serves every test.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import segmentation_models as sm
from PIL import Image

import sm_pixel_ce
from sm_pixel_ce.cli import main
from sm_pixel_ce.exporting import check as checks
from sm_pixel_ce.exporting import child, convert, tracing
from sm_pixel_ce.flavor import KERAS_FLAVOR, keras
from sm_pixel_ce.matrix import EXPORT_FORMATS, FAST_EXPORT_SUBSET, export_cell

CLASSES = 3
SIZE = 64


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)  # the same untrained model in every run and test order
    return sm.Unet(
        "mobilenetv2",
        encoder_weights=None,
        classes=CLASSES,
        activation="pixel_softmax",
        input_shape=(None, None, 3),
        decoder_filters=(16, 16, 8, 8, 8),
    )


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "unet.keras")
    model.save(path)
    return path


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    """A --data-style folder: 6 RGB images of 80x72 (resized on reading) with 3-class masks."""
    root = tmp_path_factory.mktemp("calibration")
    rng = np.random.default_rng(3)
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (80, 72, 3), dtype=np.uint8)).save(
            root / "images" / f"s{i}.png"
        )
        Image.fromarray(rng.integers(0, CLASSES, (80, 72), dtype=np.uint8), "L").save(
            root / "masks" / f"s{i}.png"
        )
    return str(root)


def _inputs(height=SIZE, width=SIZE, seed=7):
    return np.random.default_rng(seed).random((2, height, width, 3)).astype(np.float32)


def _run_tflite(path, images):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    (source,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(source["index"], list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _run_onnx(path, images):
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def test_tflite_float32_agrees_with_keras(model, tmp_path):
    out = str(tmp_path / "unet.tflite")
    report = sm_pixel_ce.export(model, out, format="tflite", size=SIZE)
    assert report.checked and report.passed is True and report.flavor == KERAS_FLAVOR
    assert report.runtime in ("ai_edge_litert", "tf.lite.Interpreter")
    # An untrained model has pixels whose two best classes lie within float32 round-off of
    # each other: their argmax may flip (one pixel of 16,384 at a difference of 6e-8, once).
    assert report.max_difference <= 1e-4 and report.argmax_agreement >= 0.999
    assert report.input_shape == [None, SIZE, SIZE, 3]
    assert report.file_bytes == os.path.getsize(out) > 100_000  # the weights are in the file
    assert report.runtime_ms_per_image > 0 and report.keras_ms_per_image > 0
    images = _inputs()
    expected = model.predict(images, verbose=0)
    got = _run_tflite(out, images)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))


def test_onnx_keeps_height_and_width_dynamic(model, tmp_path):
    out = str(tmp_path / "unet.onnx")
    report = sm_pixel_ce.export(model, out, format="onnx")
    assert report.passed is True and report.input_shape == [None, None, None, 3]
    for height, width in ((SIZE, SIZE), (96, 128)):
        images = _inputs(height, width)
        np.testing.assert_allclose(
            _run_onnx(out, images), model.predict(images, verbose=0), atol=1e-4
        )


def test_saved_model_loads_with_tensorflow_alone(model, tmp_path):
    out = str(tmp_path / "serving")
    report = sm_pixel_ce.export(model, out, format="saved_model")
    assert report.runtime == "tf.saved_model.load" and report.passed is True
    images = _inputs(96, 64)
    np.save(tmp_path / "in.npy", images)
    code = (
        "import sys, numpy as np, tensorflow as tf\n"
        f"f = tf.saved_model.load({out!r}).signatures['serving_default']\n"
        f"x = np.load({str(tmp_path / 'in.npy')!r})\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, f(images=tf.constant(x))['outputs'].numpy())\n"
        "assert 'sm_pixel_ce' not in sys.modules and 'segmentation_models' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy"), model.predict(images, verbose=0), atol=1e-5
    )


@pytest.mark.one_flavor  # the check's arithmetic; each flavour's conversion is tested above
def test_check_fails_when_the_file_disagrees(model_file, tmp_path, monkeypatch, capsys):
    """A file whose outputs are off by 1e-3 (a perturbed serving graph) exits 1."""
    traced = tracing.serving_function

    def perturbed(model, height, width):
        serve = traced(model, height, width)

        @tf_function(serve.input_signature)
        def off(images):
            return {tracing.OUTPUT_NAME: serve(images)[tracing.OUTPUT_NAME] + 1e-3}

        return off

    monkeypatch.setattr(tracing, "serving_function", perturbed)
    out = str(tmp_path / "off.tflite")
    report_path = str(tmp_path / "report.json")
    status = main(["export", model_file, "--out", out, "--size", "64", "--json", report_path])
    assert status == 1
    err = capsys.readouterr().err
    assert "more than the tolerance 0.0001" in err
    report = json.load(open(report_path))
    assert report["passed"] is False and report["max_difference"] == pytest.approx(1e-3, rel=0.05)
    # The same file passes with a tolerance above its difference: the check measures, not guesses.
    assert main(["export", model_file, "--out", out, "--size", "64", "--tolerance", "2e-3"]) == 0


def tf_function(signature):
    import tensorflow as tf

    return tf.function(input_signature=signature)


def test_int8_tflite_reports_agreement_and_miou(model, calibration, tmp_path):
    out = str(tmp_path / "int8.tflite")
    report = sm_pixel_ce.export(
        model, out, size=SIZE, quantize="int8", calibration=calibration, int8_io=True
    )
    assert report.passed is None and report.tolerance is None  # reported, not enforced
    assert report.input_dtype == "uint8" and report.samples == 6
    from sm_pixel_ce.exporting.calibration import read_calibration

    images, masks = read_calibration(calibration, SIZE, SIZE)
    assert images.shape == (6, SIZE, SIZE, 3) and masks.shape == (6, SIZE, SIZE)
    expected = model.predict(images, verbose=0)
    got, _, _ = checks.run_tflite(out, images)
    assert report.max_difference == pytest.approx(np.abs(got - expected).max(), rel=1e-5)
    assert report.argmax_agreement == pytest.approx(np.mean(got.argmax(-1) == expected.argmax(-1)))
    assert report.miou_keras == pytest.approx(_miou(expected.argmax(-1), masks))
    assert report.miou_change == pytest.approx(_miou(got.argmax(-1), masks) - report.miou_keras)
    # int8 is not float32: with tolerance 0 the same export fails its check.
    strict = sm_pixel_ce.export(
        model, out, size=SIZE, quantize="int8", calibration=calibration, tolerance=0
    )
    assert strict.passed is False and strict.max_difference > 0


def _miou(predicted, masks):
    ious = []
    for c in range(CLASSES):
        union = np.sum((predicted == c) | (masks == c))
        if union:
            ious.append(np.sum((predicted == c) & (masks == c)) / union)
    return float(np.mean(ious))


@pytest.mark.parametrize(
    "format, quantize", [("tflite", "dynamic"), ("tflite", "float16"), ("onnx", "dynamic")]
)
def test_quantized_exports_run_close_to_keras(model, tmp_path, format, quantize):
    out = str(tmp_path / f"q.{format}")
    report = sm_pixel_ce.export(model, out, format=format, size=SIZE, quantize=quantize)
    assert report.passed is None and report.max_difference < 0.1
    images = _inputs()
    got = (_run_tflite if format == "tflite" else _run_onnx)(out, images)
    assert np.abs(got - model.predict(images, verbose=0)).max() < 0.1


@pytest.mark.parametrize(
    "argv, status, words",
    [
        (["missing.keras"], 1, "found no file or folder there; fix: check the path"),
        (["{corrupt}"], 1, "found a .keras file that is not a zip archive"),
        (["{model}", "--format", "coreml"], 2, "unknown export format"),
        (["{model}", "--quantize", "int8", "--size", "64"], 2, "pass --calibration DIR"),
        (["{model}", "--quantize", "int4", "--size", "64"], 2, "unknown quantization"),
        (["{model}", "--size", "65"], 2, "multiples of 32"),
        (["{model}"], 2, "pass --size H[,W]"),
        (["{model}", "--size", "64", "--calibration", "{empty}"], 1, "holds no"),
        (["{model}", "--size", "64", "--calibration", "nowhere"], 1, "does not exist"),
        (["{model}", "--size", "64", "--calibration", "{unreadable}"], 1, "cannot decode"),
        (["{model}", "--format", "saved_model", "--quantize", "int8"], 2, "float32"),
    ],
    ids=[
        "missing-model",
        "corrupt-model",
        "unknown-format",
        "int8-without-calibration",
        "unknown-quantize",
        "size-rule",
        "tflite-needs-size",
        "empty-calibration",
        "missing-calibration",
        "unreadable-calibration",
        "saved-model-quantize",
    ],
)
def test_bad_input_is_one_line(model_file, tmp_path, capsys, argv, status, words):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip")
    (tmp_path / "empty").mkdir()
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "a.png").write_bytes(b"not an image")
    names = {
        "model": model_file,
        "corrupt": str(corrupt),
        "empty": str(tmp_path / "empty"),
        "unreadable": str(tmp_path / "unreadable"),
    }
    argv = [a.format(**names) for a in argv]
    assert main(["export", *argv, "--out", str(tmp_path / "m.tflite")]) == status
    err = capsys.readouterr().err.strip()
    assert err.startswith("sm-pixel-ce export: ") and words in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_missing_runtime_names_the_extra(model_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx now raises ImportError
    out = str(tmp_path / "m.onnx")
    assert main(["export", model_file, "--format", "onnx", "--out", out]) == 1
    err = capsys.readouterr().err
    assert "sm_pixel_ce[export]" in err and len(err.strip().splitlines()) == 1


@pytest.mark.one_flavor  # the mechanism; each flavour's conversion is tested above
def test_a_large_model_is_converted_in_a_child_process(tmp_path, monkeypatch):
    # The mechanism behind export's memory figures (examples/deploying.md): above CHILD_BYTES,
    # the file is written by a child process running protobuf's pure-Python implementation.
    # A one-layer model: the child's cost is its start (importing TensorFlow), not the model.
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(CLASSES, 1, activation="softmax")(inputs))
    model_file = str(tmp_path / "pointwise.keras")
    model.save(model_file)
    started = []
    convert_in_child = child.convert_in_child

    def spy(*args, **kwargs):
        started.append(convert_in_child(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(child, "CHILD_BYTES", 0)
    monkeypatch.setattr(child, "convert_in_child", spy)
    monkeypatch.setattr(convert, "write", None)  # nothing may convert in this process
    out = str(tmp_path / "m.onnx")
    report = sm_pixel_ce.export(model_file, out, format="onnx")
    assert started == [{"error": None, "protobuf": "python"}]
    assert report.passed and report.max_difference < 1e-4
    images = _inputs(32, 96)  # H and W stay unknown, as in this process
    np.testing.assert_allclose(_run_onnx(out, images), model.predict(images, verbose=0), atol=1e-4)
    monkeypatch.undo()
    monkeypatch.setattr(child, "CHILD_BYTES", 0)
    monkeypatch.setattr(child, "convert_in_child", None)  # isolate=False: this process converts
    sm_pixel_ce.export(model_file, str(tmp_path / "here.onnx"), format="onnx", isolate=False)
    from sm_pixel_ce.cli import main  # the command line's --in-process is isolate=False

    argv = ["export", model_file, "--format", "onnx", "--out", str(tmp_path / "cli.onnx")]
    assert main(argv + ["--in-process"]) == 0 and len(started) == 1


@pytest.mark.one_flavor
def test_the_child_reports_its_error_for_the_parent(tmp_path):
    request = {"model": str(tmp_path / "none.keras"), "result": str(tmp_path / "result.json")}
    (tmp_path / "request.json").write_text(json.dumps(request))
    child.main(str(tmp_path / "request.json"))
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["error"] == "MissingModelFileError"
    assert result["message"] == str(sm_pixel_ce.saving.model_file_error(request["model"]))


def test_weight_bytes_counts_every_variable(model):
    # float32 weights: 4 bytes per parameter, BatchNorm's moving statistics included.
    assert child.weight_bytes(model) == 4 * model.count_params()


def test_unchecked_export_says_so(tmp_path):
    # A one-layer model: what is tested is the report (the flavour: the float32 test above).
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(CLASSES, 1, activation="softmax")(inputs))
    report = sm_pixel_ce.export(model, str(tmp_path / "m.tflite"), size=SIZE, check=False)
    assert report.flavor == KERAS_FLAVOR and not report.checked
    assert "not checked" in report.format_text()


def test_support_matrix_shows_one_column_per_format():
    from sm_pixel_ce.matrix import render_export_section

    cell = {"flavor": "keras3", "arch": "Unet", "backbone": "resnet18"}
    exports = [
        {**cell, "format": "tflite", "status": "ok", "reason": "", "max_difference": 2e-6},
        {**cell, "format": "onnx", "status": "error", "reason": "export: X"},
    ]
    table = render_export_section(exports, ["resnet18", "vgg16"], archs=("Unet",))
    assert "| Keras 3 | TFLite | 1 | 0 | 1 | 2 |" in table
    assert "| Keras 3 | ONNX | 0 | 1 | 1 | 2 |" in table
    assert "| Architecture | Backbone | Keras 3 TFLite | Keras 3 ONNX |" in table
    assert "| Unet | resnet18 | ok (2e-06) | export: X |" in table
    assert "vgg16 |" not in table  # a cell not run has no row


@pytest.mark.parametrize("arch, backbone", FAST_EXPORT_SUBSET)
def test_fast_subset_exports_to_every_format(arch, backbone, tmp_path):
    """The support matrix's export cells (efficientnet's FixedDropout and swish; PSPNet)."""
    results = export_cell(arch, backbone, EXPORT_FORMATS, str(tmp_path))
    assert [r["format"] for r in results] == list(EXPORT_FORMATS)
    for result in results:
        assert result["status"] == "ok", result
        assert result["max_difference"] <= 1e-4 and result["flavor"] == KERAS_FLAVOR


#: One backbone per segmentation_models family, for the slow export matrix run.
FAMILY_REPRESENTATIVES = (
    "resnet18",
    "seresnet18",
    "resnext50",
    "seresnext50",
    "vgg16",
    "densenet121",
    "inceptionv3",
    "inceptionresnetv2",
    "mobilenetv2",
    "efficientnetb0",
)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["Unet", "FPN", "Linknet", "PSPNet"])
def test_every_family_exports_under_every_architecture(arch, tmp_path):
    """Slow (about 1 minute per cell on 2 cores): the support matrix's export columns for one
    backbone per family, in this process's flavour."""
    from sm_pixel_ce.matrix import run_export_matrix

    cells = [(KERAS_FLAVOR, arch, backbone) for backbone in FAMILY_REPRESENTATIVES]
    results = run_export_matrix(cells, str(tmp_path / "exports.jsonl"), chunk=5)
    failing = [r for r in results if r["status"] != "ok"]
    assert not failing, failing
    assert len(results) == len(cells) * len(EXPORT_FORMATS)


def test_a_model_that_cannot_trace_unknown_sizes_asks_for_size():
    """Keras 3's bilinear UpSampling2D (FPN's last layer) needs known sizes when traced; tf_keras's
    does not. Where it fails, the error asks for --size instead of a graph-mode traceback."""
    from sm_pixel_ce.flavor import IS_KERAS_3

    fpn = sm.FPN(
        "mobilenetv2",
        encoder_weights=None,
        classes=CLASSES,
        input_shape=(None, None, 3),
        pyramid_block_filters=16,
    )
    if IS_KERAS_3:
        with pytest.raises(tracing.DynamicSizeError, match=r"pass --size H\[,W\]"):
            tracing.serving_function(fpn, None, None)
    else:
        assert tracing.serving_function(fpn, None, None).get_concrete_function() is not None
    assert tracing.serving_function(fpn, SIZE, SIZE).get_concrete_function() is not None
