"""The output folder of ``compare``: every path and file name in it, and nowhere else.

::

    OUT/run_config.json            the configuration the runs were trained with (--resume)
    OUT/report.json, report.md     the report
    OUT/compare_*.png              the pictures
    OUT/predictions.npz            validation images, masks and each variant's argmax
    OUT/prune.json                 --prune: the decisions at each scoring epoch
    OUT/model_<variant>.keras      each variant's model, first seed
    OUT/runs/<variant>-seed<S>/    one finished run: result.json (written last), sample.npz,
                                   val_predictions.npy (--predictions all), model.keras (other
                                   seeds); while --prune trains in phases, checkpoint.npz and
                                   phase.json (removed when the run ends)
"""

import json
import os

#: The pictures of the report: (key, title, file name), in report order.
PICTURES = (
    ("curves", "Validation mIoU per epoch", "compare_curves.png"),
    ("per_class", "Per-class IoU", "compare_per_class_iou.png"),
    ("predictions", "Validation predictions", "compare_predictions.png"),
)


class RunFolder:
    """The files of one finished (variant, seed) run.

    Args:
        path: The run's folder.
    """

    def __init__(self, path):
        self.path = path
        #: Metrics and curve; written last, so its presence means the run is complete.
        self.result = os.path.join(path, "result.json")
        #: The argmax of the first validation images.
        self.sample = os.path.join(path, "sample.npz")
        #: The argmax of every validation image (``--predictions all``).
        self.val_predictions = os.path.join(path, "val_predictions.npy")
        #: The model of a seed after the first.
        self.model = os.path.join(path, "model.keras")
        #: ``--prune``: the weights, Adam's state and scores the next phase continues from.
        self.checkpoint = os.path.join(path, "checkpoint.npz")
        #: ``--prune``: the result at the end of the last phase (result.json once finished).
        self.phase = os.path.join(path, "phase.json")

    def load_result(self):
        """The saved result dict, or None when the run is not finished."""
        if not os.path.isfile(self.result):
            return None
        with open(self.result) as f:
            return json.load(f)

    def finish(self, result):
        """Write ``result`` as the finished run's (``result.json``) and remove what only a run
        trained in phases needs (its checkpoint and ``phase.json``)."""
        write_json(self.result, result)
        for leftover in (self.checkpoint, self.phase):
            if os.path.exists(leftover):
                os.remove(leftover)


class OutputFolder:
    """The paths of one ``compare`` output folder.

    Args:
        root: The folder (``--out``).

    Example:
        >>> out = OutputFolder("results")
        >>> out.run("cce", 0).result
        'results/runs/cce-seed0/result.json'
    """

    def __init__(self, root):
        self.root = os.fspath(root)
        self.runs = os.path.join(self.root, "runs")
        self.run_config = os.path.join(self.root, "run_config.json")
        self.report_json = os.path.join(self.root, "report.json")
        self.report_md = os.path.join(self.root, "report.md")
        self.predictions = os.path.join(self.root, "predictions.npz")
        #: ``--prune``: the decisions at each scoring epoch.
        self.prune = os.path.join(self.root, "prune.json")
        #: ``[(title, path)]`` of the pictures, in report order.
        self.pictures = {
            key: (title, os.path.join(self.root, name)) for key, title, name in PICTURES
        }

    def model(self, variant):
        """The model file of ``variant``'s first seed."""
        return os.path.join(self.root, f"model_{variant}.keras")

    def run(self, variant, seed):
        """The :class:`RunFolder` of one run."""
        return RunFolder(os.path.join(self.runs, f"{variant}-seed{seed}"))

    def model_of(self, variant, seed, first):
        """Where a run's model is saved: :meth:`model` for the first seed, else in its folder."""
        return self.model(variant) if first else self.run(variant, seed).model

    def finished_runs(self):
        """``(variant, seed)`` of every finished run, sorted by folder name."""
        if not os.path.isdir(self.runs):
            return []
        found = []
        for name in sorted(os.listdir(self.runs)):
            result = RunFolder(os.path.join(self.runs, name)).load_result()
            if result is not None:
                found.append((result["variant"], result["seed"]))
        return found


def write_json(path, value):
    """Write JSON through a temporary file, so that a file present is a file complete."""
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(temporary, path)
