"""What can go wrong before a model is exported, by who can fix it.

The command line maps them to exit statuses: a file that cannot be used and a missing runtime
exit 1, a bad argument (a plain ``ValueError``) exits 2.
"""

from ..data.folder import DataError

EXTRA_HINT = "pip install 'sm_pixel_ce[export]'"


class ModelFileError(ValueError):
    """The model file is missing or cannot be read as a model (worded by
    :func:`sm_pixel_ce.saving.model_file_error`)."""


class MissingModelFileError(ModelFileError, FileNotFoundError):
    """No file or folder at a model's path (a :class:`ModelFileError` and a
    ``FileNotFoundError``)."""


class MissingRuntimeError(ImportError):
    """A converter or runtime of the ``[export]`` extra is not installed."""


def require(module, purpose):
    """Import ``module``, or raise :class:`MissingRuntimeError` naming the ``[export]`` extra.

    Args:
        module: The module's import name, e.g. ``"tf2onnx"``.
        purpose: What it is needed for, for the message.

    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingRuntimeError(
            f"{purpose} needs {module}, which is not installed (the [export] extra): "
            f"{EXTRA_HINT}. Received: {type(error).__name__}: {error}"
        ) from None


__all__ = [
    "DataError",
    "MissingModelFileError",
    "MissingRuntimeError",
    "ModelFileError",
    "require",
]
