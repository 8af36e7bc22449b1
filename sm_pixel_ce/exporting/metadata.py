"""The data contract (:class:`~sm_pixel_ce.data.contract.DataContract`) inside exported files, as
each format keeps metadata, so that one file is enough:

* ONNX: the model's ``metadata_props``, key :data:`KEY` (onnxruntime shows it in
  ``session.get_modelmeta().custom_metadata_map``);
* TFLite: a ``Metadata`` entry of the flatbuffer, name :data:`KEY`, whose buffer holds the JSON
  (beside the converter's own ``min_runtime_version``); read back with ``ai_edge_litert``'s
  schema, without TensorFlow;
* SavedModel folder (exported, or tf_keras's ``model.save``): ``assets/`` :data:`ASSET`, a file
  the loaders leave alone.
"""

import os

from ..data.contract import DataContract

#: The metadata key (ONNX) or name (TFLite) of the contract.
KEY = "sm_pixel_ce.data_contract"
#: The contract's file in a SavedModel folder's ``assets/``.
ASSET = "sm_pixel_ce_data_contract.json"


# --- ONNX -------------------------------------------------------------------------------------


def write_onnx(path, contract):
    """Put ``contract`` in the ``metadata_props`` of the ONNX file ``path`` (rewritten in place).

    Args:
        path: An ``.onnx`` file.
        contract: A :class:`DataContract`.

    Example:
        >>> write_onnx("unet.onnx", sm_pixel_ce.data_contract(model))
    """
    import onnx

    model = onnx.load(path)
    kept = [p for p in model.metadata_props if p.key != KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=KEY, value=contract.to_json())
    onnx.save(model, path)


def read_onnx(path):
    """The contract in an ONNX file's ``metadata_props``, or None.

    Raises:
        ValueError: The entry is not a contract this version reads.
    """
    import onnx

    model = onnx.load(path, load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == KEY:
            return DataContract.from_json(prop.value)
    return None


# --- TFLite -----------------------------------------------------------------------------------


def with_tflite_metadata(data, contract):
    """A TFLite flatbuffer's bytes with ``contract`` as a metadata entry (replacing one there).

    Args:
        data: The ``.tflite`` file's bytes.
        contract: A :class:`DataContract`.

    Returns:
        The new bytes.

    Example:
        >>> data = with_tflite_metadata(converter.convert(), contract)
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != KEY]
    buffer = schema.BufferT()
    buffer.data = list(contract.to_json().encode())
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_tflite(path):
    """The contract in a ``.tflite`` file's metadata, or None. Needs ``ai_edge_litert`` (or
    TensorFlow) for the schema, and no interpreter.

    Raises:
        ValueError: The entry is not a contract this version reads.
    """
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    with open(path, "rb") as handle:
        data = handle.read()
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _name(entry.Name()) != KEY:
            continue
        buffer = model.Buffers(entry.Buffer())
        if buffer.Offset():  # a model over 2 GB keeps its buffers after the flatbuffer
            raw = data[buffer.Offset() : buffer.Offset() + buffer.Size()]
        else:
            raw = buffer.DataAsNumpy().tobytes()
        return DataContract.from_json(raw.decode())
    return None


def _name(name):
    return name.decode() if isinstance(name, bytes) else name


# --- SavedModel -------------------------------------------------------------------------------


def write_saved_model(folder, contract):
    """Write ``contract`` as ``assets/`` :data:`ASSET` of the SavedModel ``folder``."""
    assets = os.path.join(folder, "assets")
    os.makedirs(assets, exist_ok=True)
    with open(os.path.join(assets, ASSET), "w") as handle:
        handle.write(contract.to_json(indent=1))


def read_saved_model(folder):
    """The contract in a SavedModel folder's ``assets/``, or None.

    Raises:
        ValueError: The file is not a contract this version reads.
    """
    path = os.path.join(folder, "assets", ASSET)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return DataContract.from_json(handle.read())
