"""Subcommands of ``sm-pixel-ce``. Each lives in its own module with ``add_arguments(parser)``
and ``run(args) -> int``; this table is the only place that lists them.

A subcommand's module is imported only when that subcommand runs. TensorFlow is imported
regardless, ``--help`` included (about 5 s): ``sm_pixel_ce`` registers its names on import, and this
module lives inside it. TensorFlow's start-up lines are hidden unless ``--verbose`` is given
(see ``sm_pixel_ce._quiet``, which acts on the way in, before TensorFlow is imported).
"""

import argparse
import importlib
import sys

#: subcommand -> (module under sm_pixel_ce.cli, one-line help)
SUBCOMMANDS = {
    "demo": ("demo", "train a small U-Net with pixel_softmax + pixel_cce on generated scenes"),
    "compare": ("compare", "train CCE and BCE side by side and report which is better, and why"),
    "bench": ("bench", "time the losses against TensorFlow's fused kernels"),
    "matrix": (
        "matrix",
        "build/train/save/reload every segmentation_models architecture x backbone",
    ),
    "evaluate": ("evaluate", "score a trained model on a folder, class by class"),
    "export": ("export", "export a model to TFLite, ONNX or a TF Serving SavedModel, and check it"),
    "predict": ("predict", "segment images of any size with a trained model, in tiles"),
    "scenes": ("scenes", "write the generated scenes as a folder: images/, masks/, colors.json"),
}


def main(argv=None):
    """Run the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None. Defaults to None.

    Returns:
        The exit status.
    """
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's start-up logs and TensorFlow/Keras warnings (hidden by default)",
    )
    parser = argparse.ArgumentParser(
        prog="sm-pixel-ce",
        description="sm_pixel_ce: per-pixel softmax and cross-entropies for segmentation_models.",
        parents=[verbose],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    modules = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[verbose])
        if name == chosen:
            try:
                modules[name] = importlib.import_module(f"{__name__}.{module_name}")
            except ModuleNotFoundError as error:
                if error.name != f"{__name__}.{module_name}":
                    raise
                print(
                    f"sm-pixel-ce: the '{name}' command is not available in this version.",
                    file=sys.stderr,
                )
                return 2
            modules[name].add_arguments(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from ..flavor import BACKEND, IS_TENSORFLOW

    # `bench --backend jax|torch` times that backend, in this process when it already runs on it.
    if not IS_TENSORFLOW and getattr(args, "backend", None) != BACKEND:
        print(
            f"sm-pixel-ce {args.command}: error: the command line runs on the TensorFlow backend; "
            f"this process runs Keras on '{BACKEND}' (KERAS_BACKEND={BACKEND}): unset "
            "KERAS_BACKEND to run it (the objects themselves run on JAX and PyTorch, see README: "
            "Backends).",
            file=sys.stderr,
        )
        return 2
    return modules[args.command].run(args)
