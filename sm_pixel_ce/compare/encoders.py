"""Pretrained encoders for ``compare``: segmentation_models' ImageNet download, or a local file.

``--encoder-weights imagenet`` lets segmentation_models fetch the backbone's weights once into
the Keras cache (``~/.keras/models``, or ``$KERAS_HOME/models``). Without a network that fails
deep inside Keras; :func:`encoder_weights_error` turns it into one line naming the file and where
to put it. ``--encoder-weights PATH`` is the offline route (segmentation_models issues #311 and
#531): a weights file of the backbone alone, such as that same download, is loaded into the
encoder of the built model by layer name.
"""

import os
import re

from .._messages import first_line


class EncoderWeightsError(ValueError):
    """The encoder weights cannot be had: a file is missing or does not fit the backbone."""


def keras_cache_dir():
    """Where Keras's ``get_file`` keeps downloaded model weights."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def encoder_weights_error(backbone, error):
    """An :class:`EncoderWeightsError` for a failed ``encoder_weights="imagenet"`` build.

    Args:
        backbone: The backbone name.
        error: What segmentation_models raised; its message holds the URL when the download
            failed.

    Returns:
        The error, whose one-line message names the missing file, where to put it, and the
        ``PATH`` alternative.
    """
    text = str(error)
    url = re.search(r"https?://[^\s:]+(?::\d+)?[^\s:]*", text)
    if not url:
        return EncoderWeightsError(
            f"--encoder-weights imagenet: segmentation_models could not load the ImageNet "
            f"weights of {backbone} ({first_line(error)})."
        )
    url = url.group(0).rstrip(".,;")
    name = url.rsplit("/", 1)[-1]
    return EncoderWeightsError(
        f"--encoder-weights imagenet: {name} is not in {keras_cache_dir()}/ and cannot be "
        f"downloaded (no network?). Fetch {url} elsewhere and put it at "
        f"{os.path.join(keras_cache_dir(), name)}, or pass --encoder-weights PATH to that file."
    )


def check_encoder_bands(encoder_weights, channels):
    """Refuse pretrained encoder weights for images of other than 3 bands: ImageNet and the
    backbone files are RGB encoders, whose first convolution takes 3 channels.

    Args:
        encoder_weights: None, ``"imagenet"`` or the path of a weights file.
        channels: The images' channels.

    Raises:
        EncoderWeightsError: Weights given and ``channels`` is not 3.
    """
    if encoder_weights is not None and channels != 3:
        raise EncoderWeightsError(
            f"--encoder-weights {encoder_weights}: the encoder's weights take 3 bands (RGB), "
            f"but the images give {channels}; choose 3 with --bands (e.g. --bands 0,1,2), or "
            "train from scratch with --encoder-weights none."
        )


def build_encoder(backbone, size):
    """The backbone alone (``include_top=False``, random weights), as segmentation_models
    builds it inside its models."""
    import segmentation_models as sm

    get_backbone = sm.inject_global_submodules(sm.Backbones.get_backbone)
    return get_backbone(backbone, input_shape=(size, size, 3), weights=None, include_top=False)


def load_encoder_weights(model, backbone, size, path):
    """Load a weights file of ``backbone`` into the encoder layers of ``model``.

    The file is what ``encoder.save_weights(path)`` writes for ``build_encoder(backbone, size)``
    (``.weights.h5`` in Keras 3, ``.h5`` in tf_keras), or segmentation_models' own ImageNet file
    (``.h5``). Layers are matched by name; PSPNet, which keeps only the first part of the
    encoder, takes the layers it has.

    Args:
        model: A segmentation_models model built on ``backbone``.
        backbone: The backbone name.
        size: The model's input side.
        path: The weights file.

    Returns:
        The number of layers whose weights were set.

    Raises:
        EncoderWeightsError: The file is missing or does not fit the backbone.

    Example:
        >>> model = sm.Unet("resnet18", encoder_weights=None, classes=3)
        >>> load_encoder_weights(model, "resnet18", 224, "resnet18_imagenet_1000_no_top.h5")
    """
    if not os.path.isfile(path):
        raise EncoderWeightsError(
            f"--encoder-weights: {path} is not a file; expected none, imagenet or the path of a "
            f"{backbone} weights file."
        )
    encoder = build_encoder(backbone, size)
    try:
        encoder.load_weights(path)
    except Exception as error:
        raise EncoderWeightsError(
            f"{path}: cannot load it as {backbone} encoder weights ({first_line(error)[:300]})."
        ) from None
    names = {layer.name for layer in model.layers}
    loaded = 0
    for layer in encoder.layers:
        if layer.weights and layer.name in names:
            model.get_layer(layer.name).set_weights(layer.get_weights())
            loaded += 1
    if not loaded:
        raise EncoderWeightsError(
            f"{path}: no layer of the {backbone} encoder was found in the model."
        )
    return loaded
