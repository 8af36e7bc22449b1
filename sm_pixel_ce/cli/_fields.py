"""Command-line flags made from the fields of an options dataclass (their ``metadata`` holds
``help``, ``group``, ``type`` and other argparse keywords, see
:func:`sm_pixel_ce.data.options.option`), so that a flag several commands share (``--bands``,
``--mask-colors``, ...: the fields of :class:`~sm_pixel_ce.data.options.ReadOptions`) is defined
once, with one help text."""


def flag(name):
    """``"ignore_index"`` -> ``"--ignore-index"``."""
    return "--" + name.replace("_", "-")


def add_field(where, field, default=None, help=None):
    """Add the flag of one dataclass ``field`` to the parser or group ``where``.

    Args:
        where: An ``argparse`` parser or argument group.
        field: A ``dataclasses.Field`` whose metadata has ``help``, ``type`` (None for a
            switch) and ``cli`` (other argparse keywords).
        default: The flag's default; None for the field's. Defaults to None.
        help: The flag's help; None for the field's. Defaults to None.
    """
    meta = field.metadata
    text = meta["help"] if help is None else help
    default = field.default if default is None else default
    if meta["type"] is None:  # a switch; None when not given stays None (a reading option unset)
        where.add_argument(flag(field.name), action="store_true", default=default, help=text)
        return
    where.add_argument(
        flag(field.name), type=meta["type"], default=default, help=text, **meta["cli"]
    )
