"""The data contract: validated when made, one JSON form, saved inside every model file and
export, read back without the model, and absent from a plain Keras model without changing it."""

import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image

import sm_pixel_ce
from sm_pixel_ce import DataContract, data_contract, load_model, save_model, set_data_contract
from sm_pixel_ce.cli import main
from sm_pixel_ce.data.contract import FORMAT
from sm_pixel_ce.exporting import metadata
from sm_pixel_ce.flavor import IS_KERAS_3, keras

SIDE = 32
CONTRACT = DataContract(
    classes=3,
    class_names=("sky", "road", "car"),
    ignore_index=255,
    colors=((0, (0, 0, 255)), (1, (128, 64, 128)), (2, (64, 0, 128))),
    ignore_color=(0, 0, 0),
    bands=(2, 1, 0),
    channels=3,
    dtype="uint16",
    scale=4095,
    model_standardises=True,
    exif=False,
    size=(SIDE, SIDE),
    sizing="crop",
)
#: What :func:`save_model` saves of :data:`CONTRACT` with a fixed-size model.
SAVED = dataclasses.replace(CONTRACT, fixed_size=True)


def _one_line(error):
    text = str(error)
    assert "\n" not in text, text
    return text


def _model(classes=3, side=SIDE):
    inputs = keras.Input((side, side, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Conv2D(classes, 1, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss=sm_pixel_ce.PixelCategoricalCrossentropy())
    return model


# --- the contract itself ------------------------------------------------------------------------


@pytest.mark.one_flavor
def test_json_round_trip_keeps_every_field():
    text = CONTRACT.to_json()
    values = json.loads(text)
    assert values["format"] == FORMAT == "sm_pixel_ce.data_contract/1"
    assert values["colors"][0] == {"class": 0, "name": "sky", "color": [0, 0, 255]}
    assert values["colors"][-1] == {"class": 255, "name": None, "color": [0, 0, 0]}  # ignored
    back = DataContract.from_json(text)
    assert back == CONTRACT
    assert dataclasses.asdict(back) == dataclasses.asdict(CONTRACT)
    assert DataContract.from_json(CONTRACT.to_json(indent=2)) == CONTRACT
    # Defaults: names per class, the type's usual scaling, whole images resized.
    plain = DataContract(2)
    assert plain.class_names == ("class 0", "class 1") and plain.scale == 255
    assert plain.sizing == "resize" and DataContract.from_json(plain.to_json()) == plain
    # "The model scales": no division.
    assert DataContract.from_json(DataContract(2, scale=None).to_json()).scale is None
    assert DataContract(2, size=64).size == (64, 64)


@pytest.mark.one_flavor
def test_describe_is_one_line():
    text = SAVED.describe()
    assert "\n" not in text and str(SAVED) == text
    for words in (
        "3 classes (sky, road, car), ignore index 255",
        "colour-coded masks (4 colours, (0,0,0) ignored)",
        "bands (2,1,0) of uint16, divided by 4095, standardised by the model, EXIF ignored",
        "trained at 32x32, crops at the images' scale; fixed input size",
    ):
        assert words in text
    assert "as they are (the model scales)" in DataContract(2, scale=None).describe()


@pytest.mark.one_flavor
@pytest.mark.parametrize(
    "fields, words",
    [
        (dict(classes=3, class_names=("a", "b")), "class_names must be 3 names"),
        (dict(classes=0), "classes must be an int >= 1"),
        (
            dict(classes=2, colors=((0, (1, 1, 1)), (1, (1, 1, 1)))),
            "colors must be a table with each colour once",
        ),
        (dict(classes=2, colors=((5, (1, 1, 1)),)), "colors must be (class, (R, G, B)) pairs"),
        (dict(classes=2, colors=((0, (1, 1, 300)),)), "colors must be (R, G, B)"),
        (dict(classes=2, ignore_color=(0, 0, 0)), "ignore_color must be None without colors"),
        (
            dict(classes=2, ignore_index=255, colors=((0, (0, 0, 0)),), ignore_color=(0, 0, 0)),
            "ignore_color must be a colour not of class 0",
        ),
        (dict(classes=2, bands=(0, 1), channels=3), "channels must be None or 2"),
        (dict(classes=2, dtype="int8"), "dtype must be None or one of"),
        (dict(classes=2, scale=0), "scale must be None (the model scales) or a number > 0"),
        (dict(classes=2, sizing="tile"), "sizing must be one of ['resize', 'crop']"),
        (dict(classes=2, size=(0, 4)), "size must be a positive side or (height, width)"),
    ],
)
def test_a_bad_contract_is_one_line(fields, words):
    with pytest.raises(ValueError) as info:
        DataContract(**fields)
    text = _one_line(info.value)
    assert text.startswith("DataContract ") and words in text and "Received: " in text


@pytest.mark.one_flavor
@pytest.mark.parametrize(
    "change, words",
    [
        ({"format": "sm_pixel_ce.data_contract/2"}, "unknown data contract format"),
        ({"format": None}, "unknown data contract format"),
        ({"palette": "x"}, "unknown data contract key(s)"),
        ({"class_names": ["a"]}, "class_names must be 3 names"),
    ],
)
def test_a_bad_json_contract_is_one_line(change, words):
    values = {**CONTRACT.to_dict(), **change}
    with pytest.raises(ValueError) as info:
        DataContract.from_json(json.dumps(values))
    assert words in _one_line(info.value)
    with pytest.raises(ValueError, match="must be JSON"):
        DataContract.from_json("{not json")


# --- Keras files ------------------------------------------------------------------------------


def _formats():
    formats = [".keras", ".h5"]
    if not IS_KERAS_3:
        formats.append("")  # tf_keras saves a SavedModel folder
    return formats


@pytest.mark.parametrize("suffix", _formats())
def test_a_keras_file_keeps_its_contract(tmp_path, suffix):
    model = _model()
    path = str(tmp_path / f"model{suffix}")
    assert save_model(model, path, CONTRACT) == SAVED
    assert data_contract(model) is None  # the model itself is left as it was
    assert data_contract(path) == SAVED
    # Plain Keras still reads the file, and sm_pixel_ce's loader brings the contract along.
    images = np.random.default_rng(0).random((2, SIDE, SIDE, 3)).astype(np.float32)
    plain = keras.models.load_model(path)
    np.testing.assert_allclose(plain.predict(images, verbose=0), model.predict(images, verbose=0))
    loaded = load_model(path)
    assert data_contract(loaded) == SAVED
    # Load then save: the contract stays.
    again = str(tmp_path / f"again{suffix}")
    save_model(loaded, again)
    assert data_contract(again) == SAVED
    assert data_contract(load_model(again)) == SAVED


@pytest.mark.parametrize("suffix", _formats())
def test_a_model_without_a_contract_is_saved_and_loaded_as_before(tmp_path, suffix):
    model = _model()
    assert data_contract(model) is None
    path = str(tmp_path / f"plain{suffix}")
    assert save_model(model, path) is None
    assert data_contract(path) is None
    assert data_contract(load_model(path)) is None
    if suffix == ".keras":
        import zipfile

        keras_saved = str(tmp_path / "keras_saved.keras")
        model.save(keras_saved)
        names = sorted(zipfile.ZipFile(path).namelist())
        assert names == sorted(zipfile.ZipFile(keras_saved).namelist())


def test_set_data_contract_attaches_and_checks_against_the_model(tmp_path):
    model = _model()
    assert set_data_contract(model, CONTRACT) is model
    assert data_contract(model) == SAVED  # fixed_size from the model's input
    path = str(tmp_path / "model.keras")
    save_model(model, path)
    assert data_contract(path) == SAVED
    set_data_contract(model, None)
    assert data_contract(model) is None
    with pytest.raises(ValueError) as info:
        set_data_contract(model, DataContract(5))
    assert "classes do not fit the model, whose output has 3 channels" in _one_line(info.value)
    with pytest.raises(ValueError, match="channels do not fit the model, which takes 3"):
        save_model(model, path, DataContract(3, channels=4))
    with pytest.raises(ValueError, match="a data contract is a sm_pixel_ce.DataContract"):
        set_data_contract(model, {"classes": 3})
    flexible = keras.Model(*_io(None))
    assert data_contract(set_data_contract(flexible, DataContract(3))).fixed_size is False


def _io(side):
    inputs = keras.Input((side, side, 3))
    return inputs, keras.layers.Conv2D(3, 1, activation="softmax")(inputs)


@pytest.mark.one_flavor
def test_data_contract_of_a_missing_or_unknown_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        data_contract(str(tmp_path / "none.keras"))
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="Received: path="):
        data_contract(str(tmp_path / "model.pt"))


def test_a_newer_contract_in_a_file_is_a_clear_error(tmp_path):
    import zipfile

    path = str(tmp_path / "model.keras")
    save_model(_model(), path)
    newer = json.dumps({**CONTRACT.to_dict(), "format": "sm_pixel_ce.data_contract/9"})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("sm_pixel_ce_data_contract.json", newer)
    with pytest.raises(ValueError) as info:
        load_model(path)
    assert "unknown data contract format" in _one_line(info.value)
    assert keras.models.load_model(path) is not None


# --- exports ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("contract") / "model.keras")
    save_model(_model(), path, CONTRACT)
    return path


def test_onnx_export_carries_the_contract(model_file, tmp_path):
    import onnx
    import onnxruntime as ort

    out = str(tmp_path / "model.onnx")
    report = sm_pixel_ce.export(model_file, out, format="onnx")
    assert report.passed is True
    assert data_contract(out) == SAVED
    props = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert DataContract.from_json(props[metadata.KEY]) == SAVED
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    custom = session.get_modelmeta().custom_metadata_map
    assert DataContract.from_json(custom[metadata.KEY]) == SAVED


def test_tflite_export_carries_the_contract_and_still_runs(model_file, tmp_path):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    out = str(tmp_path / "model.tflite")
    report = sm_pixel_ce.export(model_file, out, format="tflite")
    assert report.passed is True and report.runtime == "ai_edge_litert"
    assert data_contract(out) == SAVED
    # A deployment reads the entry with the runtime's schema alone.
    with open(out, "rb") as handle:
        data = handle.read()
    model = schema.Model.GetRootAs(data, 0)
    entries = {
        model.Metadata(i).Name().decode(): model.Metadata(i) for i in range(model.MetadataLength())
    }
    assert "min_runtime_version" in entries  # the converter's own entry is kept
    raw = model.Buffers(entries[metadata.KEY].Buffer()).DataAsNumpy().tobytes()
    assert DataContract.from_json(raw) == SAVED
    # The LiteRT interpreter runs the file, with Keras's outputs.
    images = np.random.default_rng(1).random((1, SIDE, SIDE, 3)).astype(np.float32)
    interpreter = Interpreter(model_path=out)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = load_model(model_file).predict(images, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Writing it again replaces the entry rather than adding a second one.
    twice = metadata.with_tflite_metadata(data, DataContract(3))
    again = schema.Model.GetRootAs(twice, 0)
    names = [again.Metadata(i).Name().decode() for i in range(again.MetadataLength())]
    assert names.count(metadata.KEY) == 1


def test_saved_model_export_carries_the_contract(model_file, tmp_path):
    out = str(tmp_path / "serving")
    assert sm_pixel_ce.export(model_file, out, format="saved_model").passed is True
    assert os.path.isfile(os.path.join(out, "assets", metadata.ASSET))
    assert data_contract(out) == SAVED


def test_an_export_of_a_model_without_a_contract_has_none(tmp_path):
    out = str(tmp_path / "plain.onnx")
    sm_pixel_ce.export(_model(), out, format="onnx", check=False)
    assert data_contract(out) is None


# --- compare ----------------------------------------------------------------------------------


COLOURS = {0: (128, 64, 128), 1: (70, 70, 70), 2: (107, 142, 35)}
VOID = (0, 0, 0)


def _colour_folder(root, count=6):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        classes = np.repeat(np.repeat(rng.integers(0, 3, (4, 4)), 8, 0), 8, 1)
        colours = np.array([COLOURS[c] for c in range(3)], np.uint8)[classes]
        colours[:, :2] = VOID
        Image.fromarray(colours).save(root / "masks" / f"{i}.png")
        Image.fromarray((colours * 0.8).astype(np.uint8)).save(root / "images" / f"{i}.png")


def test_compare_saves_the_contract_of_its_reading(tmp_path, compare_argv):
    _colour_folder(tmp_path / "data")
    argv = compare_argv(
        tmp_path / "out",
        "--mask-colors",
        "auto",
        "--ignore-color",
        "0,0,0",
        data=tmp_path / "data",
    )
    assert main(argv) == 0
    contract = data_contract(str(tmp_path / "out" / "model_cce.keras"))
    order = sorted(COLOURS.values())  # "auto" numbers the colours in ascending (R, G, B)
    assert contract == DataContract(
        classes=3,
        class_names=tuple("(" + ",".join(map(str, c)) + ")" for c in order),
        ignore_index=255,
        colors=tuple(enumerate(order)) + ((255, VOID),),
        ignore_color=VOID,
        bands=None,
        channels=3,
        dtype="uint8",
        scale=255,
        model_standardises=False,
        exif=True,
        size=(SIDE, SIDE),
        fixed_size=True,
        sizing="resize",
    )
