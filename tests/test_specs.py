"""Any loss as a ``compare`` variant: specs read without eval, clear one-line errors, file-safe
names, the built-in variants as public losses, the recommendation's code run in a fresh process,
and the old ``PixelCceDiceLoss`` name still loading."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import sm_pixel_ce
from sm_pixel_ce.class_weights import ClassPixels
from sm_pixel_ce.cli import main
from sm_pixel_ce.compare import CompareOptions
from sm_pixel_ce.compare.recipe import compile_line, loss_code
from sm_pixel_ce.compare.specs import file_safe, parse_spec, split_variants
from sm_pixel_ce.compare.variants import BUILT_IN, loss_for, resolve
from sm_pixel_ce.flavor import IS_KERAS_3, keras


def test_variants_split_on_commas_outside_parentheses():
    text = (
        "cce,pixel_cce+0.5*pixel_lovasz, pixel_tversky(alpha=0.3,beta=0.7),"
        "pixel_dice(classes=[1,2])"
    )
    assert split_variants(text) == (
        "cce",
        "pixel_cce+0.5*pixel_lovasz",
        "pixel_tversky(alpha=0.3,beta=0.7)",
        "pixel_dice(classes=[1,2])",
    )
    with pytest.raises(ValueError, match="unbalanced"):
        split_variants("pixel_dice(classes=[1,2)")


def test_a_spec_is_terms_with_weights_and_options():
    spec = parse_spec(
        "pixel_cce + 0.5 * pixel_lovasz(per_image=True, classes='all') + pixel_dice*2"
    )
    assert [(t.weight, t.name, t.options) for t in spec.terms] == [
        (1.0, "pixel_cce", ()),
        (0.5, "pixel_lovasz", (("per_image", True), ("classes", "all"))),
        (2.0, "pixel_dice", ()),
    ]
    bare = parse_spec("pixel_dice(classes=[1, 2], smooth=1, eps=1e-6, log_loss=False)")
    assert bare.terms[0].options == (
        ("classes", [1, 2]),
        ("smooth", 1),
        ("eps", 1e-6),
        ("log_loss", False),
    )
    assert parse_spec("pixel_dice(classes=None)").terms[0].options == (("classes", None),)
    assert parse_spec("pixel_lovasz(classes=present)").terms[0].options == (("classes", "present"),)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("pixel_cce+0.5*pixel_lovasz", "pixel_cce+0.5xpixel_lovasz"),
        ("pixel_tversky(alpha=0.3,beta=0.7)", "pixel_tversky-alpha0.3-beta0.7"),
        ("pixel_dice(classes=[1,2])", "pixel_dice-classes1-2"),
        ("pixel_cce(class_weights=median_frequency)", "pixel_cce-class_weightsmedian_frequency"),
    ],
)
def test_file_safe_names(text, expected):
    assert file_safe(text) == expected == resolve(text).name
    assert set(expected) <= set("abcdefghijklmnopqrstuvwxyz0123456789._+-")


@pytest.mark.parametrize(
    "text, message",
    [
        ("softmax", "'softmax' is neither a variant nor a registered loss"),
        ("pixel_dise", 'did you mean "pixel_dice"?'),
        ("pixel_cce+x*pixel_dice", "a weight must be a number"),
        ("pixel_cce+0*pixel_dice", "weights must be > 0"),
        ("pixel_tversky(alhpa=0.3)", "pixel_tversky takes no option 'alhpa'; its options:"),
        ("pixel_tversky(0.3)", "options are written name=value"),
        ("pixel_dice(classes={1: 2})", "classes= takes a number, a string, None or a list"),
        ("pixel_cce(top_k=2)", "`top_k` must be a fraction"),
        ("__import__('os').system('true')", "options are written name=value"),
        ("pixel_cce-pixel_dice", "is neither a built-in variant nor a loss spec"),
        ("pixel_cce/pixel_dice", "is not a loss spec"),
        # A built-in variant's name mistyped: the closest one, and the list of built-ins.
        (
            "cce-dise",
            "'cce-dise' is neither a built-in variant nor a loss spec; did you mean "
            "'cce-dice'? Built-in variants: cce, bce, reshape, cce-weighted,",
        ),
        ("pixel_cce(", "unbalanced"),
    ],
)
def test_bad_specs_give_one_clear_line(text, message):
    with pytest.raises(ValueError) as caught:
        CompareOptions(variants=f"cce,{text}")
    line = str(caught.value)
    assert "\n" not in line and line.startswith("--variants") and message in line, line


def test_a_variant_named_twice_is_refused():
    with pytest.raises(ValueError, match="lists a variant twice"):
        CompareOptions(variants="pixel_cce+pixel_dice,pixel_cce + pixel_dice")


def test_built_in_variants_are_public_losses_with_the_run_options():
    counts = ClassPixels(np.array([60, 30, 10]), np.array([100, 100, 40]))
    losses = {v: loss_for(v, lambda: counts, 3, ignore_index=255) for v in BUILT_IN}
    dice = losses["cce-dice"]
    assert isinstance(dice, sm_pixel_ce.PixelLossSum)
    kinds = [(w, type(t).__name__, t.ignore_index) for w, t in dice.terms()]
    assert kinds == [
        (1.0, "PixelCategoricalCrossentropy", 255),
        (1.0, "PixelDiceLoss", 255),
    ]
    (_, _), (_, tversky) = losses["cce-tversky"].terms()
    assert (tversky.alpha, tversky.beta) == (0.3, 0.7)
    assert type(losses["cce-lovasz"].terms()[1][1]).__name__ == "PixelLovaszLoss"
    # scikit-learn's "balanced": n / (K n_c) = 100 / (3 * [60, 30, 10]).
    assert losses["cce-balanced"].class_weights == pytest.approx([100 / 180, 100 / 90, 100 / 30])
    assert resolve("bce").activation == "sigmoid" and resolve("cce-dice").activation == (
        "pixel_softmax"
    )
    # Everything the recommendation prints builds the same loss again.
    for variant, loss in losses.items():
        if variant == "reshape":
            continue
        rebuilt = eval(loss_code(loss), {"sm_pixel_ce": sm_pixel_ce, "keras": keras})
        assert keras.losses.serialize(rebuilt) == keras.losses.serialize(loss), variant


def test_compile_line_fills_in_weights_and_ignore_index():
    loss = sm_pixel_ce.PixelCategoricalCrossentropy(
        class_weights=[0.5, 1.0, 2.25], ignore_index=255
    ) + 0.5 * sm_pixel_ce.PixelDiceLoss(ignore_index=255, classes=[1, 2])
    assert compile_line(loss, 1e-3) == (
        "model.compile(keras.optimizers.Adam(0.001), loss=sm_pixel_ce.PixelCategoricalCrossentropy("
        "class_weights=[0.5, 1.0, 2.25], ignore_index=255) + 0.5 * sm_pixel_ce.PixelDiceLoss("
        "classes=[1, 2], ignore_index=255))"
    )


def _user_env():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


# Spec parsing and the printed code; each flavour's loss sums reload in test_loss_sums.py.
@pytest.mark.one_flavor
def test_spec_variants_end_to_end_and_the_recommended_code_trains_saves_and_reloads(
    tmp_path, mask_folder, compare_argv, capsys
):
    data = mask_folder(tmp_path / "data")
    out = tmp_path / "out"
    variants = ("pixel_cce(class_weights=median_frequency)", "pixel_cce+0.5*pixel_dice")
    assert main(compare_argv(out, "--in-process", variants=variants, data=data)) == 0
    printed = capsys.readouterr().out
    with open(out / "report.json") as f:
        saved = json.load(f)
    names = [r["variant"] for r in saved["results"]]
    assert names == ["pixel_cce-class_weightsmedian_frequency", "pixel_cce+0.5xpixel_dice"]
    for name in names:
        assert (out / "runs" / f"{name}-seed0" / "result.json").is_file()
        assert (out / f"model_{name}.keras").is_file()
    weighted = saved["results"][0]["loss"]["config"]
    assert weighted["ignore_index"] == 255 and len(weighted["class_weights"]) == 3
    code = saved["recommendation"]["code"]
    assert code[-1] == saved["results"][names.index(saved["recommendation"]["best"])]["compile"]
    assert "ignore_index=255" in code[-1] and code[-1] in printed
    with open(out / "report.md") as f:
        assert code[-1] in f.read()
    # Pasted into a fresh process: it trains, saves, and another process reloads it.
    path = tmp_path / "pasted.keras"
    script = "\n".join(
        [
            *code,
            "import numpy as np",
            "rng = np.random.default_rng(0)",
            "images = rng.random((4, 32, 32, 3), dtype=np.float32)",
            "masks = rng.integers(0, 3, (4, 32, 32)).astype(np.uint8)",
            "masks[:, :2] = 255",
            "history = model.fit(images, masks, epochs=1, batch_size=2, verbose=0).history",
            "assert np.isfinite(history['loss'][0]), history",
            f"model.save({str(path)!r})",
            "np.save(" + repr(str(tmp_path / "expected.npy")) + ", model.predict(images[:1]))",
        ]
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=_user_env()
    )
    assert run.returncode == 0, run.stderr[-2000:]
    check = (
        "import numpy as np, sm_pixel_ce\n"
        "from sm_pixel_ce.flavor import keras\n"
        f"model = keras.models.load_model({str(path)!r})\n"
        "rng = np.random.default_rng(0)\n"
        "images = rng.random((4, 32, 32, 3), dtype=np.float32)\n"
        f"expected = np.load({str(tmp_path / 'expected.npy')!r})\n"
        "assert np.allclose(model.predict(images[:1]), expected, atol=1e-5)\n"
        "print(type(getattr(model.loss, 'fn', model.loss)).__name__)\n"
    )
    reloaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=_user_env()
    )
    assert reloaded.returncode == 0, reloaded.stderr[-2000:]


def test_models_saved_with_the_old_cce_dice_class_still_load(tmp_path):
    old = {
        "class_name": "sm_pixel_ce>PixelCceDiceLoss",
        "config": {
            "num_classes": 3,
            "ignore_index": 255,
            "reduction": "sum_over_batch_size",
            "name": "pixel_cce_dice",
        },
    }
    loss = keras.losses.deserialize(old)
    assert [(type(t).__name__, t.ignore_index) for _, t in loss.terms()] == [
        ("PixelCategoricalCrossentropy", 255),
        ("PixelDiceLoss", 255),
    ]
    if not IS_KERAS_3:
        return
    # A .keras file whose compile config names the old class, as compare wrote it before.
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(3, 1)])
    model.compile("sgd", loss="pixel_cce")
    path = str(tmp_path / "old.keras")
    model.save(path)
    edited = str(tmp_path / "edited.keras")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(edited, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["compile_config"]["loss"] = {
                    "module": "sm_pixel_ce.compare.variants",
                    "class_name": "PixelCceDiceLoss",
                    "config": old["config"],
                    "registered_name": "sm_pixel_ce>PixelCceDiceLoss",
                }
                data = json.dumps(config).encode()
            target.writestr(item, data)
    reloaded = keras.models.load_model(edited)
    assert isinstance(getattr(reloaded.loss, "fn", reloaded.loss), sm_pixel_ce.PixelLossSum)
