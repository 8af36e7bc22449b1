"""Sizes segmentation_models cannot take: its rule in the error, at build time and at call time."""

import numpy as np
import pytest
import segmentation_models as sm
import tensorflow as tf

from sm_pixel_ce.flavor import keras
from sm_pixel_ce.input_sizes import SizeCheckedModel, check_input_shape, size_requirement

CLASSES = 3


def _raw(architecture):
    """segmentation_models' own builder, without sm_pixel_ce's size check around it."""
    return getattr(sm, architecture).__wrapped__


# --- the rule, on its own ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "architecture, backbone, factor, expected",
    [
        ("Unet", "resnet18", 8, (32, 32)),
        ("FPN", "vgg16", 8, (32, 32)),
        ("Linknet", "mobilenetv2", 8, (32, 32)),
        ("Unet", "inceptionresnetv2", 8, (32, 32)),  # sm's copy checks 32 px, not Keras's 75
        # keras-applications' InceptionV3 refuses a fixed input_shape under 75 px; 96 is the next
        # multiple, and the default is the rule for a fixed size
        ("Unet", "inceptionv3", 8, (32, 96)),
        ("PSPNet", "resnet18", 8, (48, 48)),
        ("PSPNet", "resnet18", 4, (24, 24)),
        ("PSPNet", "resnet18", 16, (96, 96)),
        ("PSPNet", "inceptionv3", 8, (48, 96)),  # the backbone's 75 px floor holds under PSPNet too
    ],
)
def test_size_requirement(architecture, backbone, factor, expected):
    assert size_requirement(architecture, backbone, factor)[:2] == expected
    assert size_requirement(architecture, backbone, factor, fixed_size=True)[:2] == expected


@pytest.mark.parametrize("architecture", ["Unet", "FPN", "Linknet"])
def test_a_varying_size_has_no_backbone_floor(architecture):
    multiple, minimum, reason = size_requirement(architecture, "inceptionv3", fixed_size=False)
    assert (multiple, minimum) == (32, 32)
    assert "75" not in reason
    assert "75 px" in size_requirement(architecture, "inceptionv3")[2]


@pytest.mark.parametrize(
    "architecture, kwargs, shape, expected, absent",
    [
        (
            "Unet",
            {},
            (65, 65, 3),
            [
                "multiples of 32",
                "input_shape=(65, 65, 3)",
                "height 65 -> 64 or 96",
                "width 65 -> 64 or 96",
            ],
            [],
        ),
        ("FPN", {}, (96, 80, 3), ["FPN on resnet18", "width 80 -> 64 or 96"], ["height 96"]),
        ("Linknet", {}, (16, 64, 3), ["at least 32", "height 16 -> 32"], ["width 64"]),
        (
            "Unet",
            {"backbone_name": "inceptionv3"},
            (64, 64, 3),
            [
                "at least 96",
                "refuses a fixed input_shape under 75 px",
                "height 64 -> 96",
                "input_shape=(None, None, C) takes any multiple of 32",
            ],
            [],
        ),
        # keras-applications checks each size it is given: a fixed width has the floor
        (
            "Linknet",
            {"backbone_name": "inceptionv3"},
            (None, 64, 3),
            ["at least 96", "width 64 -> 96"],
            ["height None"],
        ),
        (
            "PSPNet",
            {},
            (64, 64, 3),
            ["multiples of 48", "6 x downsample_factor = 48", "64 -> 48 or 96"],
            [],
        ),
        (
            "PSPNet",
            {"downsample_factor": 4},
            (60, 60, 3),
            ["multiples of 24", "60 -> 48 or 72"],
            [],
        ),
        (
            "PSPNet",
            {},
            (None, None, 3),
            ["PSPNet needs a fixed input size", "input_shape=(384, 384, 3)"],
            [],
        ),
        ("Unet", {}, (64, 64), ["3 values", "Received: input_shape=(64, 64)"], []),
    ],
)
def test_builders_state_the_rule(architecture, kwargs, shape, expected, absent):
    kwargs = {"backbone_name": "resnet18", **kwargs}
    with pytest.raises(ValueError) as error:
        getattr(sm, architecture)(
            input_shape=shape, encoder_weights=None, classes=CLASSES, **kwargs
        )
    for text in expected:
        assert text in str(error.value)
    for text in absent:
        assert text not in str(error.value)


def test_channels_first_shapes_read_the_right_axes():
    assert check_input_shape((3, 64, 96), "Unet", data_format="channels_first")[0] == 32
    with pytest.raises(ValueError, match="width 80 -> 64 or 96"):
        check_input_shape((3, 64, 80), "Unet", data_format="channels_first")


# --- the rule against segmentation_models itself -------------------------------------------------


@pytest.mark.parametrize(
    "architecture, backbone, size",
    [
        ("Unet", "resnet18", 48),  # rejected: sm fails in Concatenate
        ("Unet", "resnet18", 64),  # accepted: sm builds, output the input's size
        ("Unet", "vgg16", 80),  # rejected: sm builds, but the output is smaller than the input
        ("Linknet", "resnet18", 96),  # accepted
        ("PSPNet", "resnet18", 64),  # rejected by sm's own check
        ("PSPNet", "resnet18", 96),  # accepted
        ("PSPNet", "inceptionv3", 48),  # rejected: Keras's InceptionV3 refuses < 75 px
        ("Unet", "inceptionv3", 64),  # rejected: the same check of a fixed input_shape
        ("Unet", "inceptionv3", 96),  # accepted
    ],
)
def test_rule_agrees_with_segmentation_models(architecture, backbone, size):
    """Our rule accepts a size exactly when sm builds a model whose output has the input's size."""
    multiple, minimum, _ = size_requirement(architecture, backbone)
    accepted = size % multiple == 0 and size >= minimum
    try:
        model = _raw(architecture)(
            backbone, input_shape=(size, size, 3), encoder_weights=None, classes=CLASSES
        )
        works = tuple(model.output.shape[1:3]) == (size, size)
    except ValueError:
        works = False
    assert works == accepted


# --- sizes that vary: only the stride rule, for every backbone family ----------------------------

#: One backbone per segmentation_models family (seresnext50 for senet154, a quarter of its weights).
FAMILIES = (
    "resnet18",
    "seresnet18",
    "resnext50",
    "seresnext50",
    "vgg16",
    "densenet121",
    "inceptionv3",
    "inceptionresnetv2",
    "mobilenet",
    "mobilenetv2",
    "efficientnetb0",
)
#: Each architecture with a small decoder: the backbone is what is being measured.
SMALL_DECODERS = {
    "Unet": {"decoder_filters": (16, 16, 8, 8, 8)},
    "FPN": {"pyramid_block_filters": 16},
    "Linknet": {},
}
#: The default run's share (about 10 s): inceptionv3 (the only floor), a plain and a mobile family.
FAST_CASES = [("Unet", "inceptionv3"), ("Linknet", "resnet18"), ("FPN", "mobilenetv2")]
SLOW_CASES = [
    pytest.param(architecture, backbone, marks=pytest.mark.slow)
    for architecture in SMALL_DECODERS
    for backbone in FAMILIES
    if (architecture, backbone) not in FAST_CASES
]


@pytest.mark.parametrize("architecture, backbone", FAST_CASES + SLOW_CASES)
def test_varying_size_runs_at_32_and_refuses_below_and_between(architecture, backbone):
    """With input_shape=(None, None, 3) every family runs at 32 px (no builder floor applies, not
    even inceptionv3's 75 px); 16 px and 48 px fail inside sm, so they are refused with the rule.
    Slow for the full sweep (about 2 minutes on 2 cores, with the fixed-size one)."""
    keras.backend.clear_session()
    model = getattr(sm, architecture)(
        backbone,
        input_shape=(None, None, 3),
        encoder_weights=None,
        classes=1,
        activation="sigmoid",
        **SMALL_DECODERS[architecture],
    )
    assert isinstance(model, SizeCheckedModel)
    smallest = np.zeros((1, 32, 32, 3), np.float32)
    assert model.predict(smallest, verbose=0).shape == (1, 32, 32, 1)
    rule = (
        f"{architecture} on {backbone} needs input height and width that are multiples of 32 and "
        "at least 32"
    )
    for shape, fix in [
        ((1, 16, 32, 3), "height 16 -> 32"),
        ((1, 32, 48, 3), "width 48 -> 32 or 64"),
    ]:
        with pytest.raises(ValueError) as error:
            model(np.zeros(shape, np.float32))
        text = str(error.value)
        assert rule in text and fix in text and "fixed input_shape" not in text


@pytest.mark.slow
@pytest.mark.parametrize("backbone", FAMILIES)
def test_fixed_size_builds_at_its_minimum(backbone):
    """With a fixed input_shape every family builds at the rule's minimum (inceptionv3: 96)."""
    keras.backend.clear_session()
    size = size_requirement("Unet", backbone)[1]
    model = sm.Unet(
        backbone,
        input_shape=(size, size, 3),
        encoder_weights=None,
        classes=1,
        **SMALL_DECODERS["Unet"],
    )
    assert tuple(model.output.shape[1:3]) == (size, size)


# --- sizes that vary: checked when the model is called --------------------------------------------


@pytest.fixture(scope="module")
def dynamic_unet():
    keras.utils.set_random_seed(0)
    return sm.Unet(
        "resnet18",
        input_shape=(None, None, 3),
        encoder_weights=None,
        classes=CLASSES,
        activation="pixel_softmax",
    )


def test_dynamic_model_is_the_same_functional_model(dynamic_unet):
    assert isinstance(dynamic_unet, SizeCheckedModel)
    assert (dynamic_unet.architecture, dynamic_unet.backbone) == ("Unet", "resnet18")
    static = sm.Unet(
        "resnet18",
        input_shape=(64, 64, 3),
        encoder_weights=None,
        classes=CLASSES,
        activation="pixel_softmax",
    )
    assert [type(layer).__name__ for layer in dynamic_unet.layers] == [
        type(layer).__name__ for layer in static.layers
    ]
    plain = keras.Model(dynamic_unet.input, dynamic_unet.output)  # the same graph, no check
    images = np.random.default_rng(0).uniform(size=(2, 96, 128, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        dynamic_unet.predict(images, verbose=0), plain.predict(images, verbose=0)
    )


def _assert_states_rule(error, sizes):
    text = str(error.value)
    assert "Unet on resnet18 needs input height and width that are multiples of 32" in text
    for size in sizes:
        assert str(size) in text


@pytest.mark.parametrize("shape", [(1, 80, 80, 3), (1, 64, 72, 3), (1, 16, 64, 3)])
def test_eager_call_on_wrong_size_states_the_rule(dynamic_unet, shape):
    with pytest.raises(ValueError) as error:
        dynamic_unet(np.zeros(shape, np.float32))
    _assert_states_rule(error, [size for size in shape[1:3] if size % 32 or size < 32])


def test_traced_call_with_unknown_size_states_the_rule(dynamic_unet):
    call = tf.function(dynamic_unet, input_signature=[tf.TensorSpec((None, None, None, 3))])
    assert call(tf.zeros((1, 64, 96, 3))).shape == (1, 64, 96, CLASSES)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        call(tf.zeros((1, 80, 64, 3)))
    assert "multiples of 32" in str(error.value) and "[80 64]" in str(error.value)


def test_varying_size_inceptionv3_keeps_no_floor_through_its_config():
    """A model saved before ``fixed_size`` existed stores the same ``size_check``; from it the
    model gets the varying-size rule again."""
    model = sm.Linknet("inceptionv3", input_shape=(None, None, 3), encoder_weights=None, classes=1)
    config = model.get_config()
    assert config["size_check"] == {
        "architecture": "Linknet",
        "backbone": "inceptionv3",
        "data_format": "channels_last",
    }
    rebuilt = SizeCheckedModel.from_config(config)
    assert rebuilt(np.zeros((1, 32, 64, 3), np.float32)).shape == (1, 32, 64, 1)
    with pytest.raises(ValueError, match="at least 32"):
        rebuilt(np.zeros((1, 32, 80, 3), np.float32))


def test_predict_and_fit_on_wrong_size_state_the_rule():
    keras.utils.set_random_seed(0)
    model = sm.Unet(
        "resnet18",
        input_shape=(None, None, 3),
        encoder_weights=None,
        classes=CLASSES,
        activation="pixel_softmax",
    )
    model.compile("sgd", loss="pixel_cce")
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="multiples of 32"):
        model.predict(np.zeros((1, 65, 65, 3), np.float32), verbose=0)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="multiples of 32"):
        model.fit(np.zeros((2, 80, 80, 3), np.float32), np.zeros((2, 80, 80), np.uint8), verbose=0)


@pytest.mark.parametrize("extension", [".keras", ".h5"])
def test_dynamic_model_reloads_with_its_check(dynamic_unet, tmp_path, extension):
    path = tmp_path / f"unet{extension}"
    dynamic_unet.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded, SizeCheckedModel)
    assert (reloaded.architecture, reloaded.backbone) == ("Unet", "resnet18")
    images = np.random.default_rng(1).uniform(size=(1, 64, 96, 3)).astype(np.float32)
    np.testing.assert_allclose(
        reloaded.predict(images, verbose=0), dynamic_unet.predict(images, verbose=0), atol=1e-6
    )
    with pytest.raises(ValueError, match="multiples of 32"):
        reloaded(np.zeros((1, 64, 100, 3), np.float32))
