"""``sm-pixel-ce demo``: parse, call :func:`sm_pixel_ce.demo.run_demo`, print the IoU per class."""

import sys

from ..demo import run_demo


def add_arguments(parser):
    parser.add_argument(
        "--images", type=int, default=96, help="number of generated scenes (default 96)"
    )
    parser.add_argument(
        "--size", type=int, default=64, help="image side in pixels, a multiple of 32 (default 64)"
    )
    parser.add_argument("--epochs", type=int, default=6, help="training epochs (default 6)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (default 8)")
    parser.add_argument(
        "--backbone", default="resnet18", help="segmentation_models backbone (default resnet18)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for data and weights (default 0)")
    parser.add_argument(
        "--out", default="runs/demo", help="folder for the saved model (default runs/demo)"
    )


def run(args):
    if args.size % 32:
        print(
            f"sm-pixel-ce demo: --size must be a multiple of 32 for a U-Net; received {args.size}.",
            file=sys.stderr,
        )
        return 2
    try:
        result = run_demo(
            args.images,
            args.size,
            args.epochs,
            args.batch_size,
            args.backbone,
            args.seed,
            args.out,
            log=lambda line: print(line, flush=True),
        )
    except ValueError as error:
        print(f"sm-pixel-ce demo: {error}", file=sys.stderr)
        return 1
    print(f"\nsaved and reloaded {result['path']}; validation IoU per class:")
    for c, (name, iou) in enumerate(result["per_class_iou"].items()):
        print(f"  {c} {name:<11} {'absent' if iou is None else f'{iou:.3f}'}")
    print(
        f"mean IoU {result['miou']:.3f}, pixel accuracy {result['pixel_accuracy']:.3f}, "
        f"{result['seconds']:.0f} s"
    )
    return 0
