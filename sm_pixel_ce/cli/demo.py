"""``sm-pixel-ce demo``: train a small U-Net with ``pixel_softmax`` + ``pixel_cce`` on generated
7-class scenes, save it, reload it without ``custom_objects`` and report per-class IoU."""

import os
import sys
import time


def add_arguments(parser):
    parser.add_argument("--images", type=int, default=96, help="number of generated scenes (default 96)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels, a multiple of 32 (default 64)")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs (default 6)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--backbone", default="resnet18", help="segmentation_models backbone (default resnet18)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and weights (default 0)")
    parser.add_argument("--out", default="runs/demo", help="folder for the saved model (default runs/demo)")


def run(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.size % 32:
        print(f"sm-pixel-ce demo: --size must be a multiple of 32 for a U-Net; received {args.size}.",
              file=sys.stderr)
        return 2
    import numpy as np

    import sm_pixel_ce
    from sm_pixel_ce.compat import keras
    from sm_pixel_ce.data import CLASS_NAMES, NUM_CLASSES, make_scenes

    import segmentation_models as sm

    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    images, masks = make_scenes(args.images, size=args.size, seed=args.seed)
    split = max(1, args.images // 4)
    x_val, y_val, x_train, y_train = images[:split], masks[:split], images[split:], masks[split:]
    print(f"sm_pixel_ce {sm_pixel_ce.__version__} on {sm_pixel_ce.KERAS_FLAVOR}: {len(x_train)} training "
          f"and {len(x_val)} validation scenes, {args.size}x{args.size}, {NUM_CLASSES} classes", flush=True)

    model = sm.Unet(args.backbone, encoder_weights=None, classes=NUM_CLASSES, activation="pixel_softmax",
                    input_shape=(args.size, args.size, 3))
    model.compile(keras.optimizers.Adam(1e-3), loss="pixel_cce")
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs,
              batch_size=args.batch_size, verbose=2)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "unet_pixel_cce.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)  # no custom_objects: the names are registered
    probabilities = reloaded.predict(x_val, verbose=0)
    if not np.allclose(probabilities, model.predict(x_val, verbose=0), atol=1e-5):
        print("sm-pixel-ce demo: the reloaded model predicts differently.", file=sys.stderr)
        return 1
    predicted = probabilities.argmax(-1)
    print(f"\nsaved and reloaded {path}; validation IoU per class:")
    ious = []
    for c, name in enumerate(CLASS_NAMES):
        union = np.sum((predicted == c) | (y_val == c))
        iou = np.sum((predicted == c) & (y_val == c)) / union if union else float("nan")
        ious.append(iou)
        print(f"  {c} {name:<11} {'absent' if np.isnan(iou) else f'{iou:.3f}'}")
    print(f"mean IoU {np.nanmean(ious):.3f}, pixel accuracy {np.mean(predicted == y_val):.3f}, "
          f"{time.perf_counter() - start:.0f} s")
    return 0
