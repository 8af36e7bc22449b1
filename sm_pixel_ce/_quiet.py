"""A quiet command line: TensorFlow's start-up noise is hidden when ``sm-pixel-ce`` runs.

TensorFlow writes its C++ start-up lines (oneDNN, CUDA drivers, CPU instructions) straight to the
process's stderr while it is imported, before its own log level applies, and segmentation_models
prints its framework on import. The package imports both, so the command line is quieted here, on
the way in, before anything else is imported. Only the command line: a Python user importing
``sm_pixel_ce`` sees what TensorFlow normally prints. ``--verbose`` (or ``SM_PIXEL_CE_VERBOSE=1``)
brings it all back; an import that fails prints what was held back, then raises.
"""

import contextlib
import io
import os
import sys
import tempfile
import warnings

#: Python warnings from these packages are hidden on the quiet command line.
NOISY_MODULES = (
    r"(tensorflow|tf_keras|keras|absl|h5py|google|segmentation_models|efficientnet"
    r"|classification_models)(\.|$)"
)
#: The names this package's command line is run by.
PROGRAM = "sm-pixel-ce"
PACKAGE = __name__.split(".")[0]


def is_command_line(argv=None, orig_argv=None):
    """Whether this process is ``sm-pixel-ce`` or ``python -m sm_pixel_ce``.

    Args:
        argv: ``sys.argv``; read when None. Defaults to None.
        orig_argv: The interpreter's own arguments (``sys.orig_argv``); read when None. Defaults
            to None.

    Returns:
        True for the command line, False for any other program that imports the package.

    Example:
        >>> is_command_line(["-m", "compare"], ["python", "-m", "sm_pixel_ce", "compare"])
        True
    """
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if argv and os.path.basename(argv[0]) in (PROGRAM, f"{PROGRAM}.exe"):
        return True
    for flag, module in zip(orig_argv, orig_argv[1:]):
        if flag == "-m" and module in (PACKAGE, f"{PACKAGE}.__main__"):
            return True
    return False


def verbose_requested(argv=None):
    """Whether ``--verbose`` is on the command line or ``SM_PIXEL_CE_VERBOSE`` is true."""
    argv = sys.argv if argv is None else argv
    if os.environ.get("SM_PIXEL_CE_VERBOSE", "").lower() in ("1", "true", "yes"):
        return True
    return "--verbose" in argv[1:]


@contextlib.contextmanager
def quiet_imports():
    """Hold back what the imports inside print, on the quiet command line only.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (a user's own value is kept) so that TensorFlow's later C++
    lines stay hidden too: its ERROR level carries harmless start-up news on a CPU machine
    ("failed call to cuInit", "oneDNN supports DT_INT32 only on platforms with AVX-512"), while
    real failures arrive as Python exceptions, which the command line reports in one line. Hides
    Python warnings from TensorFlow, Keras and segmentation_models for the rest of the process.

    Example:
        >>> with quiet_imports():
        ...     import tensorflow
    """
    if not is_command_line() or verbose_requested():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", module=NOISY_MODULES)
    sys.stderr.flush()
    saved = os.dup(2)
    held = tempfile.TemporaryFile(mode="w+b")
    printed = io.StringIO()
    os.dup2(held.fileno(), 2)
    try:
        with contextlib.redirect_stdout(printed):
            yield
    except BaseException:
        _restore(saved)
        held.seek(0)
        sys.stderr.write(printed.getvalue() + held.read().decode(errors="replace"))
        raise
    else:
        _restore(saved)
    finally:
        held.close()
    _quiet_python_loggers()


def _restore(saved):
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


def _quiet_python_loggers():
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
