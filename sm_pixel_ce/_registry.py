"""The one place that knows how names are registered with Keras.

Modules decorate what they define with :func:`register`; nothing else touches Keras's tables.
Each object is recorded here under its names and made known to Keras in three ways:

1. ``register_keras_serializable(package="sm_pixel_ce")``, so saved models find it again
   (the config stores ``"sm_pixel_ce>Name"``);
2. the global custom-objects table under each plain name, which is where tf_keras looks for
   ``"pixel_softmax"`` or ``"pixel_cce"`` given as strings;
3. in Keras 3, the built-in name tables of ``keras.activations`` / ``keras.losses`` /
   ``keras.metrics``: Keras 3's ``get("name")`` looks nowhere else. In tf_keras, activation
   functions also go into ``tf_keras.src.activations``' namespace, under their plain and
   registered names: tf_keras serializes a custom activation as ``{"class_name": "function"}``,
   which its own ``.h5`` loader then looks up as a class named "function" and fails; an activation
   found in that namespace is saved as its name instead, which every loader resolves.
"""

import difflib
import importlib

from .flavor import IS_KERAS_3, keras

PACKAGE = "sm_pixel_ce"

#: kind -> {name: object}.
_REGISTRY = {"activation": {}, "layer": {}, "loss": {}, "metric": {}}

# Keras 3 module whose ALL_OBJECTS_DICT resolves string identifiers of each kind.
_KERAS3_TABLES = {
    "activation": "keras.src.activations",
    "loss": "keras.src.losses",
    "metric": "keras.src.metrics",
}
_TF_KERAS_ACTIVATIONS = "tf_keras.src.activations"


def register(kind, *aliases):
    """Record an object under its own name and ``aliases``, and make Keras find it by them.

    Args:
        kind: One of ``"activation"``, ``"layer"``, ``"loss"``, ``"metric"``.
        *aliases: Extra string names that resolve to the object.

    Returns:
        A decorator that registers its argument and returns it unchanged.

    Example:
        >>> @register("loss", "my_loss")
        ... class MyLoss(keras.losses.Loss): ...
    """
    if kind not in _REGISTRY:
        raise ValueError(
            f"Unknown kind. Expected one of {sorted(_REGISTRY)}. Received: kind={kind!r}"
        )

    def decorator(obj):
        names = (obj.__name__, *aliases)
        for name in names:
            for other_kind, table in _REGISTRY.items():
                if name in table and table[name] is not obj:
                    raise ValueError(
                        f"The name {name!r} is already registered as a {other_kind} "
                        f"({table[name]!r}); names must be unique."
                    )
        obj = serializable(obj)
        custom_objects = keras.utils.get_custom_objects()
        table = _keras_table(kind)
        if table is not None and not IS_KERAS_3:
            table[f"{PACKAGE}>{obj.__name__}"] = obj
        for name in names:
            _REGISTRY[kind][name] = obj
            if not (IS_KERAS_3 and kind in ("loss", "metric")):
                custom_objects[name] = obj
            if table is not None:
                table[name] = obj
        # Keras 3 saves compile(loss="pixel_cce") as that string and, on loading, looks it up
        # in the custom objects first: a class found there would become model.loss as is, and
        # the next save fails on it. Left out, the string reaches keras.losses.get (the table
        # above), which makes an instance, as for Keras's own names.
        if kind == "loss" and not IS_KERAS_3 and aliases:
            # tf_keras resolves a loss name saved by compile(loss="pixel_cce") to whatever the
            # table holds and compiles that as is: a class would be wrapped as a loss *function*.
            default = obj()
            for name in aliases:
                custom_objects[name] = default
        return obj

    return decorator


def serializable(obj):
    """Make ``obj`` savable and reloadable as ``"sm_pixel_ce>Name"``, without a plain string name.

    Used for the loss *functions*: their plain names resolve to the loss classes, which carry
    the options and the weighted-mean reduction.

    Args:
        obj: A function or class.

    Returns:
        ``obj`` unchanged.
    """
    return keras.utils.register_keras_serializable(package=PACKAGE, name=obj.__name__)(obj)


def _keras_table(kind):
    """The dict in which the running Keras resolves names of ``kind`` itself, if it has one."""
    if IS_KERAS_3:
        if kind not in _KERAS3_TABLES:
            return None
        return importlib.import_module(_KERAS3_TABLES[kind]).ALL_OBJECTS_DICT
    if kind == "activation":
        return vars(importlib.import_module(_TF_KERAS_ACTIVATIONS))
    return None


def list_names(kind=None):
    """The registered string names, sorted.

    Args:
        kind: Restrict to one kind (``"activation"``, ``"loss"``, ...); all kinds when None.
            Defaults to None.

    Returns:
        A sorted list of names.

    Example:
        >>> "pixel_cce" in list_names("loss")
        True
    """
    if kind is None:
        return sorted(name for table in _REGISTRY.values() for name in table)
    if kind not in _REGISTRY:
        raise ValueError(
            f"Unknown kind. Expected one of {sorted(_REGISTRY)}. Received: kind={kind!r}"
        )
    return sorted(_REGISTRY[kind])


def get(name, kind=None):
    """The object registered under ``name``, or a ValueError listing the valid names.

    Keras's own lookups (``keras.losses.get``...) give a bare "Could not interpret" for a
    misspelt name; this one says what exists and what was probably meant.

    Args:
        name: A string name such as ``"pixel_cce"``.
        kind: Restrict to one kind (``"activation"``, ``"layer"``, ``"loss"``, ``"metric"``), or
            None for any. Defaults to None.

    Returns:
        The registered function or class.

    Example:
        >>> get("pixel_cce")
        <class 'sm_pixel_ce.losses.cross_entropy.PixelCategoricalCrossentropy'>
    """
    names = list_names(kind)
    tables = _REGISTRY.values() if kind is None else [_REGISTRY[kind]]
    for table in tables:
        if name in table:
            return table[name]
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f' Did you mean "{close[0]}"?' if close else ""
    what = "name" if kind is None else f"{kind} name"
    raise ValueError(
        f"Unknown sm_pixel_ce {what}. Expected one of {names}. Received: {name!r}.{hint}"
    )


def is_registered(name):
    """Whether ``name`` resolves to an sm_pixel_ce object.

    Args:
        name: A string name such as ``"pixel_softmax"``.

    Returns:
        True when the name is registered.
    """
    return any(name in table for table in _REGISTRY.values())
