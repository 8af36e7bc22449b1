"""The cells of the support matrix: which architectures, backbones, flavours and export formats,
and the input each cell is built at."""

from ..input_sizes import ARCHITECTURES, size_requirement
from ..sm_support import supported_backbones

FLAVORS = ("keras3", "tf_keras")
FLAVOR_TITLES = {"keras3": "Keras 3", "tf_keras": "tf_keras"}
#: Square input per architecture: 64 px for the encoder-decoders (multiples of 32 work); PSPNet
#: pools its /8 features into 1, 2, 3 and 6 bins, so 48 (6 * 8) is its smallest size.
INPUT_SIZES = {"Unet": 64, "FPN": 64, "Linknet": 64, "PSPNet": 48}
#: Output classes of every cell's model.
CLASSES = 7
#: The fast subset run by the default tests (``--subset fast``).
FAST_SUBSET = (
    ("Unet", "resnet18"),
    ("Unet", "seresnet18"),
    ("Unet", "resnext50"),
    ("Unet", "mobilenetv2"),
    ("Unet", "efficientnetb0"),
    ("Unet", "vgg16"),
    ("FPN", "resnet18"),
    ("Linknet", "mobilenetv2"),
    ("PSPNet", "resnet18"),
)
EXPORT_FORMATS = ("tflite", "onnx")
FORMAT_TITLES = {"tflite": "TFLite", "onnx": "ONNX"}
#: The export cells run by the default tests (efficientnet's FixedDropout and swish, the
#: inception-resnet Lambda layers, PSPNet's fixed-size pooling).
FAST_EXPORT_SUBSET = (("Unet", "efficientnetb0"), ("PSPNet", "mobilenetv2"))


def choose_cells(archs=ARCHITECTURES, backbones="all", subset=None):
    """The (architecture, backbone) cells to run.

    Args:
        archs: Architecture names. Defaults to all four.
        backbones: Backbone names, or ``"all"`` for every segmentation_models backbone. Defaults to
            ``"all"``.
        subset: ``"fast"`` for :data:`FAST_SUBSET` instead of ``archs`` x ``backbones``. Defaults to
            None.

    Returns:
        A list of ``(arch, backbone)``.

    Raises:
        ValueError: An unknown architecture or backbone.

    Example:
        >>> choose_cells(["Unet"], ["resnet18"])
        [('Unet', 'resnet18')]
    """
    if subset == "fast":
        return list(FAST_SUBSET)
    if subset is not None:
        raise ValueError(f"unknown subset. Expected 'fast' or None. Received: subset={subset!r}")
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown:
        raise ValueError(
            f"unknown architecture {unknown}. Expected some of {list(ARCHITECTURES)}. "
            f"Received: archs={list(archs)}"
        )
    known = list_backbones()
    chosen = known if backbones == "all" else list(backbones)
    unknown = [b for b in chosen if b not in known]
    if unknown:
        raise ValueError(
            f"unknown backbone(s) {unknown}. Expected some of {known}. Received: backbones={chosen}"
        )
    return [(a, b) for a in archs for b in chosen]


def list_backbones():
    """``sm.Backbones.models_names()``: every backbone segmentation_models offers.

    Returns:
        The backbone names, in segmentation_models' order.
    """
    return supported_backbones()


def cell_size(arch, backbone):
    """A cell's square input: :data:`INPUT_SIZES`, raised to what the backbone accepts
    (inceptionv3: 96)."""
    return max(INPUT_SIZES[arch], size_requirement(arch, backbone)[1])
