"""Loading ``.keras`` files in tf_keras with and without sm_pixel_ce's copy of the weights."""

import gc
import os
import statistics
import tempfile
import time

from ..flavor import IS_KERAS_3, keras
from ..saving import tf_keras_archive_reads


def load_benchmark(backbones, arch="FPN", size=64, repeats=3, progress=None):
    """Time ``load_model`` of ``.keras`` files in tf_keras: weights read from sm_pixel_ce's copy,
    against tf_keras's own reads from inside the zip, interleaved load by load.

    Args:
        backbones: segmentation_models backbone names, e.g. ``("resnet18", "resnet50")``.
        arch: The architecture built on each. Defaults to ``"FPN"``.
        size: Input side in pixels. Defaults to 64.
        repeats: Timed loads per way and backbone (median taken). Defaults to 3.
        progress: Callable given one line per finished load. Defaults to None.

    Returns:
        ``None`` in Keras 3 (which copies the weights out itself, so there is nothing to compare);
        otherwise ``{"arch", "size", "repeats", "rows"}``, a row per backbone with the file's
        ``megabytes``, median seconds ``s`` per way (``"copy"``, ``"zip"``) and ``speedup``
        (zip / copy).

    Example:
        >>> # tf_keras, 177 MB, 2 cores: about 4.5
        >>> load_benchmark(["resnet101"])["rows"][0]["speedup"]
    """
    if IS_KERAS_3:
        return None
    import segmentation_models as sm

    rows = []
    with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_bench_") as folder:
        for backbone in backbones:
            model = getattr(sm, arch)(
                backbone,
                encoder_weights=None,
                classes=3,
                activation="pixel_softmax",
                input_shape=(size, size, 3),
            )
            path = os.path.join(folder, f"{arch}_{backbone}.keras")
            model.save(path)
            del model
            seconds = {"copy": [], "zip": []}
            for repeat in range(repeats):
                for way in seconds:
                    keras.backend.clear_session()
                    gc.collect()
                    with tf_keras_archive_reads(copy=way == "copy"):
                        started = time.perf_counter()
                        keras.models.load_model(path, compile=False)
                        seconds[way].append(time.perf_counter() - started)
                    if progress:
                        progress(
                            f"load {arch} {backbone}: {way} {seconds[way][-1]:.1f} s "
                            f"({repeat + 1}/{repeats})"
                        )
            medians = {way: statistics.median(values) for way, values in seconds.items()}
            rows.append(
                {
                    "backbone": backbone,
                    "megabytes": os.path.getsize(path) / 2**20,
                    "s": medians,
                    "speedup": medians["zip"] / medians["copy"],
                }
            )
            os.remove(path)
    keras.backend.clear_session()
    return {"arch": arch, "size": size, "repeats": repeats, "rows": rows}
