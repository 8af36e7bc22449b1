"""Peak memory of multi-scale test-time augmentation: one large image through
``sm_pixel_ce.predict_image`` at the scales given, in this process alone, so that
``/usr/bin/time -v`` reads its peak resident set size.

Usage (the figures of examples/tta.md):

    for scales in 1 1.25 0.75,1,1.25 0.5,0.75,1,1.25,1.5,1.75; do
        /usr/bin/time -v python examples/tta_memory.py --scales $scales 2>&1 \\
            | grep -E "scales|Maximum resident"
    done

The model is a 3x3 convolution and a softmax (8 classes, built here, no weights to download):
what is measured is the pipeline's arrays (the image, the scaled copy, its probabilities, the
running sum), not a network's activations.
"""

import argparse
import time

import numpy as np

from sm_pixel_ce.flavor import keras
from sm_pixel_ce.inference.tiling import predict_image


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1", help="--tta-scales (default: 1)")
    parser.add_argument("--tta", default="none", help="--tta flips (default: none)")
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--tile", type=int, default=512)
    args = parser.parse_args(argv)
    inputs = keras.Input((None, None, 3))
    logits = keras.layers.Conv2D(args.classes, 3, padding="same")(inputs)
    model = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    image = np.random.default_rng(0).random((args.height, args.width, 3), dtype=np.float32)
    started = time.perf_counter()
    probabilities = predict_image(
        model, image, tile=args.tile, tta=args.tta, tta_scales=args.scales, batch_size=4
    )
    seconds = time.perf_counter() - started
    print(
        f"scales {args.scales}, tta {args.tta}: {args.width}x{args.height} px, "
        f"{args.classes} classes, tiles of {args.tile}: {seconds:.1f} s, "
        f"probabilities {probabilities.nbytes / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
