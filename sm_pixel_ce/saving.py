"""``load_model``: reload any model saved with sm_pixel_ce objects, with a clear error when it cannot."""

import os
import zipfile

from .compat import IS_KERAS_3, keras


def load_model(path, compile=True, safe_mode=True):
    """Load a model saved as ``.keras``, ``.h5`` or (tf_keras) a SavedModel folder.

    Importing sm_pixel_ce registers its names, so this always finds ``pixel_softmax``,
    ``pixel_cce``, ``pixel_bce`` and the rest without ``custom_objects``. A file that cannot be a
    model (missing, truncated, corrupted) raises one clear error instead of a deep traceback.

    Args:
        path: The saved model's file or folder.
        compile: Restore the loss and optimizer too. Defaults to True.
        safe_mode: Refuse to run Python code stored in the file (``.keras``). Defaults to True.

    Returns:
        The model.

    Example:
        >>> model = sm_pixel_ce.load_model("unet.keras")
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No saved model at {path!r}. Received: path={path!r}")
    kind = _kind(path)
    if kind == "keras" and not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a readable .keras file: a .keras model is a zip archive, and this file "
            "is not one (truncated or corrupted: save it again)."
        )
    if kind == "h5" and not _is_hdf5(path):
        raise ValueError(
            f"{path!r} is not a readable .h5 file: no HDF5 signature (truncated or corrupted: save it again)."
        )
    kwargs = {"compile": compile}
    if IS_KERAS_3 or kind == "keras":
        kwargs["safe_mode"] = safe_mode
    try:
        return keras.models.load_model(path, **kwargs)
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(
            f"Could not read the model in {path!r}: the file is damaged (truncated or corrupted: "
            f"save it again). Received: {type(error).__name__}: {error}"
        ) from error


def _kind(path):
    if os.path.isdir(path):
        return "savedmodel"
    return {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}.get(os.path.splitext(path)[1].lower(), "other")


def _is_hdf5(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"
