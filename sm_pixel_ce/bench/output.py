"""What every bench job writes beside its numbers: the machine it ran on and its JSON file."""

import json
import os


def machine():
    """The machine's share of a job's ``config``, read when the job ends.

    Returns:
        ``{"cpu_count", "load_average_at_end"}``: the CPU count and the 1, 5 and 15 minute load
        averages, which say how busy the machine was while it was measured.

    Example:
        >>> config = {"backbone": "mobilenetv2", **machine()}
    """
    return {"cpu_count": os.cpu_count(), "load_average_at_end": list(os.getloadavg())}


def write_json(result, path):
    """Write a job's figures to ``path`` as indented JSON, creating its folder.

    Args:
        result: The figures: dicts, lists, numbers and strings.
        path: The JSON file; nothing is written when it is None or empty.

    Returns:
        ``path``.

    Example:
        >>> write_json({"points": []}, "bench/compare_scaling.json")
    """
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as handle:
            json.dump(result, handle, indent=2)
            handle.write("\n")
    return path
