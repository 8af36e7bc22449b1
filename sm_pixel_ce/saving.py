"""``load_model``: reload any model saved with sm_pixel_ce objects, with a clear error when it
cannot; ``save_model``, ``set_data_contract`` and ``data_contract``: the model's
:class:`~sm_pixel_ce.data.contract.DataContract` (what it was trained on) inside its file.

Where the contract is kept, so that ``keras.models.load_model`` still reads every file as before:

* ``.keras``: the zip member :data:`KERAS_MEMBER` beside ``config.json`` (Keras 3 and tf_keras
  read only the members they know);
* ``.h5``: the root attribute :data:`H5_ATTRIBUTE`;
* SavedModel folder (tf_keras): ``assets/`` (see :mod:`sm_pixel_ce.exporting.metadata`, which
  also keeps it in ONNX and TFLite exports).

Also mends, at import, how tf_keras reads the weights of a ``.keras`` file (see
``_patch_tf_keras_archive_reads``): without it a large model takes minutes to load.
"""

import contextlib
import dataclasses
import io
import json
import os
import shutil
import tempfile
import zipfile

from ._messages import first_line
from .data.contract import DataContract
from .exporting import metadata
from .exporting.errors import MissingModelFileError, ModelFileError
from .flavor import IS_KERAS_3, keras

#: A ``.keras`` file's weights up to this size are read into memory before tf_keras opens them;
#: larger ones go to a temporary file (Keras 3 draws the same line).
IN_MEMORY_LIMIT = 512 * 1024 * 1024
#: The ``.keras`` archive's member that holds the data contract.
KERAS_MEMBER = "sm_pixel_ce_data_contract.json"
#: The ``.h5`` file's root attribute that holds the data contract.
H5_ATTRIBUTE = "sm_pixel_ce_data_contract"
#: The attribute of an in-memory model that holds its data contract.
_ATTRIBUTE = "_sm_pixel_ce_data_contract"
#: What :func:`load_model` reads, for messages.
KERAS_FILES = "a .keras or .h5 file, or a SavedModel folder"


def model_file_error(path, found=None, expected=KERAS_FILES):
    """The error of a model path a job cannot use, worded once for every job (``evaluate``,
    ``predict``, ``export``, :func:`load_model`): the path, what was expected, what was found,
    and the fix, in one line.

    Args:
        path: The model's path, as given.
        found: What is there, e.g. ``"a file that is not a zip archive"``; None when nothing is
            (no such file or folder); kept as the error's ``found``. Defaults to None.
        expected: The model files the job reads. Defaults to :data:`KERAS_FILES`.

    Returns:
        A :class:`~sm_pixel_ce.exporting.errors.MissingModelFileError` (also a
        ``FileNotFoundError``) when nothing is there, else a
        :class:`~sm_pixel_ce.exporting.errors.ModelFileError`; both are ``ValueError``.

    Example:
        >>> raise model_file_error("runs/unet.keras")
        Traceback (most recent call last):
        MissingModelFileError: cannot use runs/unet.keras as a model: expected a .keras or .h5 ...
    """
    text = f"cannot use {os.fspath(path)} as a model: expected {expected}; found"
    if found is None:
        error = MissingModelFileError(
            f"{text} no file or folder there; fix: check the path (compare saves each "
            "variant's model as OUT/model_<variant>.keras)."
        )
    else:
        error = ModelFileError(
            f"{text} {found}; fix: save the model again (sm_pixel_ce.save_model, or rerun compare)."
        )
    error.found = found  # for a caller that reads more formats to word it again
    return error


def load_model(path, compile=True, safe_mode=True):
    """Load a model saved as ``.keras``, ``.h5`` or (tf_keras) a SavedModel folder.

    Importing sm_pixel_ce registers its names, so this always finds ``pixel_softmax``,
    ``pixel_cce``, ``pixel_bce`` and the rest without ``custom_objects``. A file that cannot be a
    model (missing, truncated, corrupted) raises one clear error instead of a deep traceback.
    The file's data contract, if it has one, comes with the model (:func:`data_contract`), so
    that saving it again with :func:`save_model` keeps it.

    Args:
        path: The saved model's file or folder.
        compile: Restore the loss and optimizer too. Defaults to True.
        safe_mode: Refuse to run Python code stored in the file (``.keras``). Defaults to True.

    Returns:
        The model.

    Raises:
        ModelFileError: (a ``ValueError``; ``MissingModelFileError``, also a
            ``FileNotFoundError``, when nothing is there) The path is missing or the file is
            damaged, worded by :func:`model_file_error`.
        ValueError: The file holds a data contract this version cannot read.

    Example:
        >>> model = sm_pixel_ce.load_model("unet.keras")
        >>> sm_pixel_ce.data_contract(model).class_names
        ('sky', 'road', 'car')
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise model_file_error(path)
    kind = _kind(path)
    if kind == "keras" and not zipfile.is_zipfile(path):
        raise model_file_error(
            path, "a .keras file that is not a zip archive (truncated or corrupted)"
        )
    if kind == "h5" and not _is_hdf5(path):
        raise model_file_error(
            path, "an .h5 file without the HDF5 signature (truncated or corrupted)"
        )
    kwargs = {"compile": compile}
    if IS_KERAS_3 or kind == "keras":
        kwargs["safe_mode"] = safe_mode
    try:
        model = keras.models.load_model(path, **kwargs)
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise model_file_error(
            path,
            f"a damaged file (truncated or corrupted: {type(error).__name__}: {first_line(error)})",
        ) from error
    if IS_KERAS_3 and kind == "h5" and compile:
        mend_keras3_h5_training(model, path)
    if (
        IS_KERAS_3
        and kind == "keras"
        and compile
        and type(model).compile is not keras.Model.compile
    ):
        compile_as_saved(model, path)
    contract = _read_contract(path, kind)
    if contract is not None:
        set_data_contract(model, contract)
    return model


def save_model(model, path, contract=None, **kwargs):
    """Save ``model`` as Keras does for the path's extension, with its data contract inside.

    The file stays a plain Keras file: ``keras.models.load_model`` reads it as before, and
    :func:`load_model` or :func:`data_contract` also read the contract. A contract whose
    ``fixed_size`` is None is saved with the model's own (True when its input has a height and
    width).

    Args:
        model: A Keras model.
        path: ``.keras``, ``.h5``, or (tf_keras) a SavedModel folder.
        contract: A :class:`~sm_pixel_ce.data.contract.DataContract`; None for the one set on
            the model (:func:`set_data_contract`, or :func:`load_model`'s), and without one
            the model is saved as ``model.save`` saves it. Defaults to None.
        **kwargs: More arguments of ``model.save`` (``include_optimizer``, ...).

    Returns:
        The contract saved (None without one).

    Raises:
        ValueError: The contract does not fit the model (its classes or channels).

    Example:
        >>> contract = sm_pixel_ce.DataContract(3, ("sky", "road", "car"), size=128)
        >>> sm_pixel_ce.save_model(model, "unet.keras", contract)
        >>> keras.models.load_model("unet.keras")   # a plain Keras file still
    """
    path = os.fspath(path)
    contract = data_contract(model) if contract is None else contract
    if contract is not None:
        contract = _fitted(model, contract)
    model.save(path, **kwargs)
    if contract is None:
        return None
    kind = _kind(path)
    if kind == "keras":
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(KERAS_MEMBER, contract.to_json(indent=1))
    elif kind == "h5":
        import h5py

        with h5py.File(path, "a") as file:
            file.attrs[H5_ATTRIBUTE] = contract.to_json()
    elif kind == "savedmodel":
        metadata.write_saved_model(path, contract)
    else:
        raise ValueError(
            "a data contract is saved in .keras, .h5 and SavedModel folders. "
            f"Received: path={path!r}"
        )
    return contract


def set_data_contract(model, contract):
    """Attach ``contract`` to the in-memory ``model``, for :func:`save_model` to save.

    Args:
        model: A Keras model.
        contract: A :class:`~sm_pixel_ce.data.contract.DataContract`, or None to remove one.

    Returns:
        ``model``.

    Raises:
        ValueError: ``contract`` is not a DataContract, or does not fit the model.

    Example:
        >>> sm_pixel_ce.set_data_contract(model, sm_pixel_ce.DataContract(2, ("land", "water")))
        >>> sm_pixel_ce.save_model(model, "unet.keras")
    """
    if contract is not None:
        contract = _fitted(model, contract)
    # Outside Keras's attribute tracking: a plain attribute that no Keras format saves.
    object.__setattr__(model, _ATTRIBUTE, contract)
    return model


def data_contract(model_or_path):
    """The data contract of a model, or of a model file: what it was trained on, or None.

    Args:
        model_or_path: A Keras model (its contract from :func:`set_data_contract` or
            :func:`load_model`), or a ``.keras``, ``.h5``, SavedModel folder, ``.onnx`` or
            ``.tflite`` path (read without loading the model).

    Returns:
        A :class:`~sm_pixel_ce.data.contract.DataContract`, or None when there is none (any
        model saved without one).

    Raises:
        MissingModelFileError: (a ``FileNotFoundError``) No such path.
        ValueError: The contract in the file is not one this version reads (a newer format, a
            field that does not fit), or the path is not a model file.

    Example:
        >>> contract = sm_pixel_ce.data_contract("unet.tflite")
        >>> contract.class_names, contract.scale, contract.size
        (('sky', 'road', 'car'), 255, (128, 128))
    """
    if not isinstance(model_or_path, (str, os.PathLike)):
        return getattr(model_or_path, _ATTRIBUTE, None)
    path = os.fspath(model_or_path)
    if not os.path.exists(path):
        raise model_file_error(path, expected=f"{KERAS_FILES}, or an .onnx or .tflite file")
    kind = _kind(path)
    suffix = os.path.splitext(path)[1].lower()
    if kind == "other" and suffix not in (".onnx", ".tflite"):
        raise ValueError(
            "a data contract is read from .keras, .h5, SavedModel folders, .onnx and .tflite "
            f"files. Received: path={path!r}"
        )
    if suffix == ".onnx":
        return metadata.read_onnx(path)
    if suffix == ".tflite":
        return metadata.read_tflite(path)
    return _read_contract(path, kind)


def _read_contract(path, kind):
    """The contract in a Keras file of ``kind`` (see :func:`_kind`), or None."""
    if kind == "keras":
        with zipfile.ZipFile(path) as archive:
            if KERAS_MEMBER not in archive.namelist():
                return None
            return DataContract.from_json(archive.read(KERAS_MEMBER))
    if kind == "h5":
        import h5py

        with h5py.File(path, "r") as file:
            text = file.attrs.get(H5_ATTRIBUTE)
        return None if text is None else DataContract.from_json(text)
    if kind == "savedmodel":
        return metadata.read_saved_model(path)
    return None


def _fitted(model, contract):
    """``contract`` checked against ``model`` (one input, one output), with the model's
    ``fixed_size`` when it has none."""
    if not isinstance(contract, DataContract):
        raise ValueError(
            "a data contract is a sm_pixel_ce.DataContract. "
            f"Received: contract of type {type(contract).__name__}"
        )
    inputs, outputs = _shape(model, "input_shape"), _shape(model, "output_shape")
    if inputs is not None and contract.fixed_size is None and len(inputs) == 4:
        contract = dataclasses.replace(
            contract, fixed_size=inputs[1] is not None and inputs[2] is not None
        )
    if (
        inputs is not None
        and contract.channels is not None
        and inputs[-1] not in (None, contract.channels)
    ):
        raise ValueError(
            f"the data contract's channels do not fit the model, which takes {inputs[-1]}. "
            f"Received: channels={contract.channels}"
        )
    if outputs is not None and outputs[-1] is not None:
        fits = outputs[-1] == contract.classes or (outputs[-1] == 1 and contract.classes <= 2)
        if not fits:
            raise ValueError(
                f"the data contract's classes do not fit the model, whose output has "
                f"{outputs[-1]} channels. Received: classes={contract.classes}"
            )
    return contract


def _shape(model, name):
    """The model's single input or output shape, or None (several, or not known yet)."""
    try:
        shape = getattr(model, name)
    except (AttributeError, RuntimeError, ValueError):
        return None
    if (
        not isinstance(shape, tuple)
        or not shape
        or not all(s is None or isinstance(s, int) for s in shape)
    ):
        return None
    return shape


def compile_as_saved(model, path):
    """Compile a reloaded model with the compile arguments it was saved with.

    Keras 3 skips ``compile_from_config`` (with a warning) for every model class that overrides
    ``compile``, such as keras-hub's tasks (``DeepLabV3ImageSegmenter``,
    ``SegFormerImageSegmenter``): they reload without their loss and metrics, or (keras-hub
    compiles in its constructor) with keras-hub's defaults instead. Here the
    ``compile_config`` stored in the ``.keras`` file is deserialized and passed to the model's own
    ``compile``, and the optimizer's saved variables (its step count and slots, which Keras has
    skipped) are read from the file's weights, so that training resumes where it stopped.

    Args:
        model: A Keras 3 model just loaded from ``path``.
        path: The ``.keras`` file it came from.

    Returns:
        The same model, compiled as saved; unchanged when the file holds no compile arguments.

    Example:
        >>> model = keras.saving.load_model("segformer.keras")  # keras-hub's default loss
        >>> compile_as_saved(model, "segformer.keras").evaluate(images, masks)
    """
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    saved = config.get("compile_config")
    if not saved:
        return model
    model.compile(**keras.utils.deserialize_keras_object(saved))
    if getattr(model, "optimizer", None) is not None and model.built:
        model.optimizer.build(model.trainable_variables)
        _load_optimizer_variables(model.optimizer, path)
    return model


def _load_optimizer_variables(optimizer, path):
    """Give ``optimizer`` the variables saved in the ``.keras`` file ``path``, where they match."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        if "model.weights.h5" not in archive.namelist():
            return  # sharded weights: left to Keras
        weights = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(weights), "r") as file:
        saved = file.get("optimizer/vars")
        if saved is None or len(saved) != len(optimizer.variables):
            return
        optimizer.load_own_variables({key: saved[key][()] for key in saved})


def mend_keras3_h5_training(model, path):
    """Make a model that Keras 3 loaded from ``.h5`` train on, with its saved optimizer state.

    Keras 3's legacy ``.h5`` loader builds the optimizer on ``model._trainable_variables``, which is
    empty for a functional model (its layers own the variables), so restoring the saved slots fails
    with a logged warning and the first ``fit`` raises "Unknown variable: ... This optimizer can
    only be called for the variables it was originally built with" (Keras's own losses too). It
    also compiles a loss saved by name as its *class*, which trains (Keras instantiates it) but
    cannot be saved again. Here the optimizer is rebuilt from its config on the model's trainable
    variables and given the saved slots and iteration count, class-valued losses become default
    instances, and the model is compiled again with the rest of its compile arguments.

    Args:
        model: A compiled Keras 3 model just loaded from ``path``.
        path: The ``.h5`` file it came from (its ``optimizer_weights`` are read again).

    Returns:
        The same model, compiled with the rebuilt optimizer.

    Example:
        >>> model = keras.models.load_model("unet.h5")
        >>> mend_keras3_h5_training(model, "unet.h5").fit(images, masks)
    """
    config = getattr(getattr(model, "_compile_config", None), "config", None)
    if not getattr(model, "compiled", False) or config is None:
        return model
    config = dict(config)
    optimizer = model.optimizer
    known = getattr(optimizer, "_trainable_variables", None)
    if optimizer is not None and known is not None and len(known) != len(model.trainable_variables):
        fresh = optimizer.__class__.from_config(optimizer.get_config())
        fresh.build(model.trainable_variables)
        saved = _saved_optimizer_weights(path)
        if saved is not None and [v.shape for v in saved] == [
            tuple(v.shape) for v in fresh.variables
        ]:
            fresh.set_weights(saved)
        config["optimizer"] = fresh
    config["loss"] = _instances(config.get("loss"))
    model.compile(**config)
    return model


def _instances(loss):
    """``loss`` with every loss class (as the ``.h5`` loader restores names) made an instance."""
    if isinstance(loss, type):
        return loss()
    if isinstance(loss, dict):
        return {key: _instances(value) for key, value in loss.items()}
    if isinstance(loss, (list, tuple)):
        return type(loss)(_instances(value) for value in loss)
    return loss


def _saved_optimizer_weights(path):
    """The optimizer slot values saved in an ``.h5`` file, in saved order, or None."""
    import h5py
    import numpy as np

    with h5py.File(path, "r") as file:
        if "optimizer_weights" not in file:
            return None
        group = file["optimizer_weights"]
        names = list(group.attrs.get("weight_names", []))
        chunk = 0
        while f"weight_names{chunk}" in group.attrs:  # long name lists are split by h5 header size
            names += list(group.attrs[f"weight_names{chunk}"])
            chunk += 1
        return [np.asarray(group[n.decode() if isinstance(n, bytes) else n]) for n in names]


def _kind(path):
    if os.path.isdir(path):
        return "savedmodel"
    return {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}.get(
        os.path.splitext(path)[1].lower(), "other"
    )


def _is_hdf5(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def read_archive_member(archive, name, in_memory_limit=IN_MEMORY_LIMIT):
    """Copy one member of a zip archive into a seekable file, in one forward pass.

    Args:
        archive: An open ``zipfile.ZipFile``.
        name: The member's name, e.g. ``"model.weights.h5"``.
        in_memory_limit: Members up to this many bytes go to memory, larger ones to a temporary
            file (deleted when closed). Defaults to ``IN_MEMORY_LIMIT``.

    Returns:
        A binary file object positioned at 0; the caller closes it.

    Example:
        >>> with zipfile.ZipFile("unet.keras") as archive:
        ...     weights = read_archive_member(archive, "model.weights.h5")
    """
    size = archive.getinfo(name).file_size
    target = io.BytesIO() if size <= in_memory_limit else tempfile.TemporaryFile()
    try:
        with archive.open(name, "r") as source:
            shutil.copyfileobj(source, target, 16 * 1024 * 1024)
    except BaseException:
        target.close()
        raise
    target.seek(0)
    return target


def _patch_tf_keras_archive_reads():
    """Make tf_keras read a ``.keras`` file's weights from a copy, not from inside the zip.

    tf_keras (2.x, frozen) hands h5py the zip member itself (``ZipExtFile`` over a ``GFile``). h5py
    seeks back and forth, and each backward seek in a zip member re-reads it from its start, so
    loading takes time quadratic in the model's size: a 950 MB senet154 FPN had not loaded after
    27 minutes on 2 cores. Keras 3 fixed the same code by extracting the member first
    (keras-team/keras#19852);
    this does that for tf_keras. Saving and ``.h5`` files are untouched.
    """
    try:
        import h5py
        from tf_keras.src.saving import saving_lib
    except ImportError:  # another tf_keras layout: leave it as it is
        return
    store = getattr(saving_lib, "H5IOStore", None)
    if store is None or getattr(store.__init__, "_sm_pixel_ce", False):
        return
    original_init = store.__init__

    def __init__(self, root_path, archive=None, mode="r"):
        if archive is None or mode != "r":
            original_init(self, root_path, archive=archive, mode=mode)
            return
        self.root_path, self.archive, self.mode = root_path, archive, mode
        self.io_file = read_archive_member(archive, root_path)
        try:
            self.h5_file = h5py.File(self.io_file, mode="r")
        except BaseException:  # not HDF5 after all: free the copy (it may be a temporary file)
            self.io_file.close()
            raise

    __init__._sm_pixel_ce = True
    __init__._original = original_init
    store.__init__ = __init__


@contextlib.contextmanager
def tf_keras_archive_reads(copy):
    """Choose, inside this block, how tf_keras reads a ``.keras`` file's weights: from
    sm_pixel_ce's copy (``copy=True``, the default after import) or from inside the zip, as tf_keras
    alone does (``copy=False``). For ``sm-pixel-ce bench``, which times both.

    Args:
        copy: Read from the copy.

    Yields:
        None.

    Example:
        >>> with tf_keras_archive_reads(copy=False):
        ...     model = keras.models.load_model("unet.keras")  # tf_keras's own, slow reads
    """
    from tf_keras.src.saving import saving_lib

    store = saving_lib.H5IOStore
    patched = store.__init__
    original = getattr(patched, "_original", None)
    if original is None:
        raise RuntimeError("sm_pixel_ce's tf_keras archive reads are not installed in this process")
    store.__init__ = patched if copy else original
    try:
        yield
    finally:
        store.__init__ = patched


if not IS_KERAS_3:
    _patch_tf_keras_archive_reads()
