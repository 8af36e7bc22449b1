"""The one-line texts every job prints: the first line of an exception's message."""

import re


def first_line(error):
    """The first line of an exception's message, without TensorFlow's wrapping.

    Args:
        error: any exception (a TensorFlow error's ``message`` is read where it has one).

    Returns:
        The message's first non-empty line, or the exception's class name when it has none.

    Example:
        >>> first_line(ValueError("bad mask\\nmore detail"))
        'bad mask'
    """
    text = str(getattr(error, "message", error))
    # TensorFlow wraps its messages: "{{function_node ...}} what [Op:DecodeImage] name: ".
    text = re.sub(r"\{\{.*?\}\}", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*", "", text, flags=re.S)
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__
