"""Write examples/api.md: every public object of sm_pixel_ce with its signature and one line.

The public objects are the ``__all__`` of the package and of its public modules (below); the line
is the first line of each docstring. ``tests/test_readme.py`` checks that the page is current, so
a new public object or a changed signature shows up as a test failure until this is rerun:

    python examples/api_reference.py --out examples/api.md
"""

import argparse
import importlib
import inspect

#: The modules whose ``__all__`` is public, in the page's order, with what each is for.
MODULES = (
    ("sm_pixel_ce", "Losses, activation, metrics, saving, registry, the jobs' functions"),
    ("sm_pixel_ce.scores", "Scores in NumPy: confusion matrix, streaming scores, SMP's functional"),
    ("sm_pixel_ce.data", "Reading folders, the generated scenes, the data contract"),
    ("sm_pixel_ce.compare", "`sm-pixel-ce compare` from Python"),
    ("sm_pixel_ce.compare.statistics", "The advisor's statistics"),
    ("sm_pixel_ce.inference", "`evaluate` and `predict` from Python"),
    ("sm_pixel_ce.exporting", "`export` from Python"),
    ("sm_pixel_ce.bench", "`bench` from Python"),
    ("sm_pixel_ce.matrix", "The support matrix"),
)


class _Shown:
    """A default value shown by its kind: a stream's repr names the file it is open on, and
    pytest replaces ``sys.stderr`` by its own."""

    def __init__(self, value):
        self.text = "<stream>" if hasattr(value, "write") else f"<{type(value).__name__}>"

    def __repr__(self):
        return self.text


def _signature(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return ""
    parameters = [
        p.replace(default=_Shown(p.default))
        if p.default is not p.empty and repr(p.default).startswith("<")
        else p
        for p in signature.parameters.values()
    ]
    signature = str(signature.replace(parameters=parameters))
    if inspect.isclass(obj):
        signature = signature.replace("(self, ", "(").replace("(self)", "()")
    return signature


def _first_line(obj):
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ") if doc else ""


def _entry(module, name):
    obj = getattr(module, name)
    if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return f"- `{name}{_signature(obj)}`: {_first_line(obj)}"
    return f"- `{name}` = `{obj!r}`" if isinstance(obj, (str, int, float)) else f"- `{name}`"


def public_names(module):
    """The public names of ``module``: its ``__all__``, else what it defines without ``_``."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
        ]
    return sorted(names, key=str.lower)


def render():
    """The page's Markdown.

    Returns:
        A string: a heading per module, a line per public object.

    Example:
        >>> render().startswith("# API reference")
        True
    """
    out = [
        "# API reference",
        "",
        "Every public object, with its signature and the first line of its docstring (the "
        "docstrings give Args, Returns and an example). Written by "
        "`python examples/api_reference.py --out examples/api.md`; the tests check it is current.",
    ]
    for name, what in MODULES:
        module = importlib.import_module(name)
        out += ["", f"## `{name}`: {what}", ""]
        out += [_entry(module, n) for n in public_names(module)]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="examples/api.md")
    path = parser.parse_args().out
    with open(path, "w", encoding="utf-8") as file:
        file.write(render())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
