"""Run a SavedModel's serving_default signature with TensorFlow alone (no sm_pixel_ce).

``check.run_saved_model`` runs this file's text with ``python -c`` in a fresh process:
``python -c SOURCE SAVED_MODEL INPUT.npz OUTPUT.npz REPEATS``. It writes the outputs, the seconds
per call and the modules that were imported, so the check can prove that neither sm_pixel_ce nor
segmentation_models was needed.
"""

import sys
import time

import numpy as np
import tensorflow as tf


def main(saved_model, input_path, output_path, repeats):
    images = np.load(input_path)["images"]
    signature = tf.saved_model.load(saved_model).signatures["serving_default"]
    (input_name,) = signature.structured_input_signature[1]
    outputs = signature(**{input_name: tf.constant(images)})
    (output_name,) = outputs
    seconds = []
    for _ in range(int(repeats)):
        start = time.perf_counter()
        signature(**{input_name: tf.constant(images)})[output_name].numpy()
        seconds.append(time.perf_counter() - start)
    loaded = [m for m in ("sm_pixel_ce", "segmentation_models") if m in sys.modules]
    np.savez(
        output_path,
        outputs=outputs[output_name].numpy(),
        seconds=np.array(seconds),
        loaded=np.array(loaded, dtype=str),
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
