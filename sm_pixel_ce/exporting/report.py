"""What an export produced and what its check found: :class:`ExportReport`, as text or JSON."""

import dataclasses
import json
import math

RUNTIME_TITLES = {"tflite": "TFLite", "onnx": "ONNX", "saved_model": "SavedModel"}


@dataclasses.dataclass
class ExportReport:
    """The result of :func:`sm_pixel_ce.export`.

    ``passed`` is None when nothing was enforced (no check, or a quantized export without an
    explicit tolerance), else whether ``max_difference <= tolerance``. ``miou_keras`` and
    ``miou_export`` are None without masks, or when the masks hold no class of the model
    (undefined, shown as ``-``).
    """

    format: str
    quantize: str | None
    path: str
    file_bytes: int
    input_shape: list
    input_dtype: str
    flavor: str
    checked: bool = False
    runtime: str | None = None
    samples: int = 0
    sample_source: str | None = None
    max_difference: float | None = None
    argmax_agreement: float | None = None
    tolerance: float | None = None
    passed: bool | None = None
    runtime_ms_per_image: float | None = None
    keras_ms_per_image: float | None = None
    miou_keras: float | None = None
    miou_export: float | None = None

    @property
    def miou_change(self):
        """``miou_export - miou_keras`` when the samples had masks, else None."""
        if self.miou_keras is None or self.miou_export is None:
            return None
        return self.miou_export - self.miou_keras

    def to_dict(self):
        """The report as a JSON-friendly dict (with ``miou_change``)."""
        data = dataclasses.asdict(self)
        data["miou_change"] = self.miou_change
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}

    def write_json(self, path):
        """Write :meth:`to_dict` to ``path``."""
        with open(path, "w") as handle:
            json.dump(self.to_dict(), handle, indent=2)
            handle.write("\n")

    def format_text(self):
        """A few lines for people: the file, the agreement, the latency."""
        kind = self.quantize or "float32"
        shape = "x".join("?" if s is None else str(s) for s in self.input_shape)
        lines = [
            f"exported {RUNTIME_TITLES[self.format]} ({kind}, {self.flavor}) to {self.path}: "
            f"{_size(self.file_bytes)}, input {shape} {self.input_dtype}"
        ]
        if not self.checked:
            return "\n".join(lines + ["not checked (check=False)"])
        verdict = ""
        if self.passed is not None:
            verdict = f" (tolerance {self.tolerance:g}: {'ok' if self.passed else 'FAILED'})"
        lines.append(
            f"check in {self.runtime} on {self.samples} {self.sample_source}: "
            f"max |probability difference| {self.max_difference:.3g}{verdict}, "
            f"argmax agreement {100 * self.argmax_agreement:.2f}%"
        )
        if self.miou_keras is not None or self.miou_export is not None:
            lines.append(
                f"mIoU on the calibration masks: Keras {_number(self.miou_keras, '.4f')}, "
                f"export {_number(self.miou_export, '.4f')} "
                f"(change {_number(self.miou_change, '+.4f')})"
            )
        lines.append(
            f"CPU latency per image: {self.runtime_ms_per_image:.2f} ms ({self.runtime}) vs "
            f"{self.keras_ms_per_image:.2f} ms (Keras predict)"
        )
        return "\n".join(lines)


def _number(value, spec):
    """``value`` formatted with ``spec``, or ``-`` when it is undefined (None)."""
    return "-" if value is None else format(value, spec)


def _size(count):
    for unit in ("B", "KB", "MB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.2f} GB"


def directory_bytes(path):
    """Bytes of a file, or of every file under a folder (a SavedModel)."""
    import os

    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )
