"""A worker process: ``python -m sm_pixel_ce.matrix STAGE SPEC FOLDER``.

``STAGE`` is ``build`` or ``reload`` (:mod:`.reload`) or ``export`` (:mod:`.export`); ``SPEC`` is
the JSON file :func:`~sm_pixel_ce.matrix.workers.run_worker` wrote. One JSON result per line goes
to stdout as each cell finishes. Importing ``sm_pixel_ce`` on the way here registered its names,
as in a user's own process.
"""

import json
import sys

from .export import export_cells
from .reload import build_cells, reload_cells

STAGES = {"build": build_cells, "reload": reload_cells, "export": export_cells}


def main(argv):
    stage, spec_path, folder = argv
    with open(spec_path) as handle:
        spec = json.load(handle)
    for result in STAGES[stage](spec, folder):
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
