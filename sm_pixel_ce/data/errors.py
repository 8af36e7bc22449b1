"""What a data folder's errors are: one line that names the file at fault, and whether
``--skip-bad`` may drop the pair it belongs to."""


class DataError(ValueError):
    """The folder cannot be used as given; the message says what was expected and received."""


class OptionsMismatch(DataError):
    """A file that is fine in itself but does not fit the options (a mask value beyond
    ``--classes``, a colour missing from ``--mask-colors``, a band beyond ``--bands``).
    ``--skip-bad`` never drops it: the options, not the file, are what to change."""


def some(names, limit=3):
    """``"a, b, c and 2 more"``: the first ``limit`` of ``names`` and how many are left."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
