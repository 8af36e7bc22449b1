"""``sm_pixel_ce.data.options.ReadOptions``: every reading flag once, whichever command offers it.

One help text and one error text per flag across ``compare``, ``evaluate``, ``predict`` and
``export`` (their parsers are built and their command lines run up to the options' check, which
comes before any model or file is read); flat keywords map into ``read``; the defaults are the
ones each job had before the options were shared.
"""

import argparse
import dataclasses
import pickle
import re

import pytest

from sm_pixel_ce.cli import compare, evaluate, export, main, predict
from sm_pixel_ce.compare.options import CompareOptions
from sm_pixel_ce.data.options import ReadOptions, flat_defaults
from sm_pixel_ce.exporting.calibration import CalibrationOptions
from sm_pixel_ce.inference.evaluation import EvaluateOptions
from sm_pixel_ce.inference.predict import PredictOptions

pytestmark = pytest.mark.one_flavor

COMMANDS = {"compare": compare, "evaluate": evaluate, "predict": predict, "export": export}
JOBS = {
    "compare": CompareOptions,
    "evaluate": EvaluateOptions,
    "predict": PredictOptions,
    "export": CalibrationOptions,
}
FIELDS = [field.name for field in dataclasses.fields(ReadOptions)]


def _flags(module):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return {option: action for action in parser._actions for option in action.option_strings}


@pytest.fixture(scope="module")
def flags():
    return {name: _flags(module) for name, module in COMMANDS.items()}


def test_a_command_offers_the_reading_flags_of_its_job_and_no_other(flags):
    for command, job in JOBS.items():
        offered = {name for name in FIELDS if "--" + name.replace("_", "-") in flags[command]}
        if command == "export":
            offered.remove("size")  # the size the export is traced at, its own flag
        assert offered == set(job.READS), command
    assert "masks" not in PredictOptions.READS and "class_names" not in CompareOptions.READS


@pytest.mark.parametrize("name", FIELDS)
def test_each_reading_flag_has_one_help_text(flags, name):
    field = {f.name: f for f in dataclasses.fields(ReadOptions)}[name]
    flag = "--" + name.replace("_", "-")
    actions = [flags[command][flag] for command, job in JOBS.items() if name in job.READS]
    assert len(actions) >= 2 or name == "class_names"
    for action in actions:
        assert action.help == field.metadata["help"]
        assert action.metavar == field.metadata["cli"].get("metavar")
        assert action.type is field.metadata["type"] or field.metadata["type"] is None


def _argv(command, tmp_path):
    model = str(tmp_path / "missing.keras")
    return {
        "compare": ["compare", "--out", str(tmp_path / "out")],
        "evaluate": ["evaluate", model, "--data", str(tmp_path)],
        "predict": ["predict", model, str(tmp_path), "--out", str(tmp_path / "out")],
        "export": ["export", model, "--out", str(tmp_path / "m.tflite"), "--calibration", "."],
    }[command]


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("size", "0", "--size must be an integer >= 1, e.g. 256; received 0."),
        ("ignore_index", "70000", "--ignore-index must be a mask value in [0, 65535]"),
        ("class_names", "a,,b", "--class-names must be a name per class"),
        ("mask_colors", "nowhere.json", "--mask-colors must be auto or a JSON file of colours"),
        ("ignore_color", "1,2", "--ignore-color must be R,G,B with values in [0, 255]"),
        ("ignore_color", "1,2,3", "--ignore-color marks a colour of colour-coded masks"),
        ("masks", None, None),
        ("mask_pattern", "{stem}.jpg", "--mask-pattern must be a file name with {stem} once"),
        ("bands", "a", "--bands must be comma-separated band indices counted from 0"),
        ("scale", "0", "--scale must be a positive number, e.g. 4095 for 12-bit data; received"),
    ],
)
def test_each_bad_value_gives_one_error_line_on_every_command(
    tmp_path, capsys, name, value, message
):
    if value is None:  # any folder name is a good value
        return
    flag = "--" + name.replace("_", "-")
    errors = {}
    for command, job in JOBS.items():
        if name not in job.READS:
            continue
        assert main(_argv(command, tmp_path) + [flag, value]) == 2, command
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        errors[command] = re.sub(r"^sm-pixel-ce \w+: (error: )?", "", lines[0])
    assert len(errors) >= 2 or name == "class_names"
    assert len(set(errors.values())) == 1, errors
    assert next(iter(errors.values())).startswith(message)


def test_flat_keywords_round_trip():
    flat = dict(
        size=32,
        ignore_index=255,
        class_names="sky, road",
        mask_colors="AUTO",
        ignore_color="0, 0, 0",
        bands=[0, 1, 2],
        scale=4095,
        no_exif=True,
        skip_bad=True,
    )
    options = EvaluateOptions(tile=None, **flat)
    assert options.read == ReadOptions(**flat)
    expected = dict(
        flat,
        class_names=("sky", "road"),
        mask_colors="auto",
        ignore_color="0,0,0",
        bands="0,1,2",
        masks=None,
        mask_pattern=None,
    )
    assert {k: v for k, v in options.flat().items() if k in FIELDS} == expected
    assert options.size == 32 and options.read.exif is False
    assert EvaluateOptions(**options.flat()) == options
    assert dataclasses.replace(options, scale=255).scale == 255
    # evaluate and predict took exif=, the opposite of --no-exif.
    assert PredictOptions(exif=False).no_exif is True and PredictOptions(exif=True).read.exif
    assert PredictOptions().no_exif is None and PredictOptions().flat()["no_exif"] is False
    same = pickle.loads(pickle.dumps(CompareOptions(size=32, ignore_index=255)))
    assert same == CompareOptions(size=32, ignore_index=255) and same.size == 32


def test_a_job_refuses_a_reading_option_it_does_not_take():
    with pytest.raises(TypeError, match="masks"):
        PredictOptions(masks="labels")
    with pytest.raises(ValueError, match="PredictOptions does not take --masks; received"):
        PredictOptions(read=ReadOptions(masks="labels"))
    with pytest.raises(ValueError, match="--bands says how the --calibration folder is read"):
        CalibrationOptions(bands="0,1,2")


def test_the_defaults_are_the_old_ones():
    unset = dict(
        ignore_index=None,
        class_names=None,
        mask_colors=None,
        ignore_color=None,
        masks=None,
        mask_pattern=None,
        bands=None,
        scale=None,
        no_exif=False,
        skip_bad=False,
    )
    for job, size in ((CompareOptions, 64), (EvaluateOptions, None), (PredictOptions, None)):
        defaults = flat_defaults(job)
        assert {k: v for k, v in defaults.items() if k in FIELDS} == {
            k: v for k, v in dict(unset, size=size).items() if k in job.READS
        }
    assert CompareOptions().size == 64 and CompareOptions().read.no_exif is None
    assert EvaluateOptions().overlap == 0.25 and PredictOptions().tta == "none"


def test_unset_options_are_filled_and_given_ones_kept():
    given = ReadOptions(bands="0,1,2")
    contract = dict(bands="2,1,0", size=256, ignore_index=255, no_exif=None)
    assert given.filled(**contract) == ReadOptions(bands="0,1,2", size=256, ignore_index=255)
    assert given.effective().no_exif is False and given.effective().skip_bad is False
    assert ReadOptions(mask_colors="auto", ignore_color="0,0,0").ignore_value(300) == 65535
    assert ReadOptions(ignore_index=7).ignore_value(3) == 7
    reader = ReadOptions(bands="0,1", no_exif=True, mask_pattern="{stem}_m.png").reader(4)
    assert reader.image_reader.bands == (0, 1) and not reader.exif and reader.classes == 4


def test_export_reads_its_calibration_folder_with_the_shared_options(tmp_path):
    import numpy as np
    from PIL import Image

    from sm_pixel_ce.exporting.calibration import read_calibration

    (tmp_path / "images").mkdir()
    pixels = np.zeros((8, 8, 3), np.uint8)
    pixels[..., 0] = 100
    Image.fromarray(pixels).save(tmp_path / "images" / "a.png")
    options = CalibrationOptions(folder=str(tmp_path), scale=200, bands="0")
    images, masks = read_calibration(
        options.folder, 8, 8, reader=options.read.reader(), scale=options.scale
    )
    assert masks is None and images.shape == (1, 8, 8, 1)
    np.testing.assert_allclose(images, 0.5, rtol=1e-6)
