"""Make segmentation_models' models and objects build, save and reload in Keras 3 and tf_keras.

segmentation_models 1.0.1 and its backbone libraries predate Keras 3. Importing this module (done by
``import sm_pixel_ce``) mends, at import time and without touching their files:

* **Lambda layers that name functions** (``slice_tensor``, ``expand_dims`` of image-classifiers,
  used by ``resnext*``, ``seresnet*``, ``seresnext*``, ``senet154``): the functions are registered
  as serializable, so Keras 3 finds them again in safe mode;
* **the Python lambda of ``inceptionresnetv2``** (its residual scaling): the backbone is built with
  a named, registered function of the same math, so the model reloads with ``safe_mode=True``;
* **``densenet*`` layer names with ``/``** (``conv1/conv``), which Keras 3 refuses: in Keras 3
  the backbone is built with ``/`` replaced by ``_`` in layer names; the layers, their order (sm
  takes densenet features by layer index) and the weights are unchanged;
* **sm's losses and metrics** (``sm.losses.*``, ``sm.metrics.*``, their sums and products): they
  gain ``get_config``/``from_config`` and are registered, so a model compiled with them reloads
  without ``custom_objects``, with the same class weights, class indexes, per_image and threshold;
* **input sizes the architectures cannot take** (H or W not a multiple of 32, or of
  6 x ``downsample_factor`` for PSPNet), which fail deep inside Keras: ``sm.Unet``, ``sm.FPN``,
  ``sm.Linknet`` and ``sm.PSPNet`` check ``input_shape`` and say the rule, and return a
  :class:`~sm_pixel_ce.input_sizes.SizeCheckedModel` for ``None`` sizes, which says it when
  called on a wrong size (see :mod:`sm_pixel_ce.input_sizes`).

Nothing here changes what a model computes.
"""

import functools
import inspect

import numpy as np

from . import flavor
from ._registry import PACKAGE, serializable
from .flavor import IS_KERAS_3
from .input_sizes import ARCHITECTURES, SizeCheckedModel, check_input_shape, spatial_axes

flavor.check_sm_framework()

try:
    import classification_models.models._common_blocks as _blocks
    import segmentation_models as sm
    from segmentation_models.backbones.backbones_factory import Backbones
    from segmentation_models.base import objects as _sm_objects
except ModuleNotFoundError:
    # Off TensorFlow (KERAS_BACKEND=jax) segmentation_models is one model library among others:
    # without it there is nothing to mend, and the rest of sm_pixel_ce works.
    if flavor.IS_TENSORFLOW:
        raise
    sm = None

#: Backbones whose builder gets the mended ``layers`` module, and why.
_DENSENETS = ("densenet121", "densenet169", "densenet201")
_INCEPTION_RESNET = "inceptionresnetv2"


# --- Lambda layers -------------------------------------------------------------------------------


class _NamedFunction:
    """A function that tf_keras's ``Lambda`` saves by its registered name.

    tf_keras saves *every* Python function in a Lambda as bytecode, which ``safe_mode`` then
    refuses; a callable object is saved as its ``__name__`` instead, and looked up in the custom
    objects on load. Keras 3 saves named functions by name already.
    """

    def __init__(self, function):
        self.function = function
        self.__name__ = function.__name__
        self.__doc__ = function.__doc__

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)


def _lambda_function(function):
    """``function`` registered so that a Lambda layer holding it saves and reloads in safe mode."""
    if IS_KERAS_3:
        return serializable(function)
    named = serializable(_NamedFunction(function))
    named.__name__ = f"{PACKAGE}>{function.__name__}"
    return named


def scaled_residual(inputs, scale):
    """``inputs[0] + inputs[1] * scale``: the residual step of Inception-ResNet v2, by name.

    Args:
        inputs: The pair ``[shortcut, residual]`` of tensors of one shape.
        scale: The residual's scale, a float.

    Returns:
        ``shortcut + residual * scale``.
    """
    return inputs[0] + inputs[1] * scale


# image-classifiers' grouped convolutions and squeeze-excitation blocks wrap these module-level
# functions in Lambda layers, looking them up in their module when a model is built.
if sm is not None:
    _blocks.slice_tensor = _lambda_function(_blocks.slice_tensor)
    _blocks.expand_dims = _lambda_function(_blocks.expand_dims)
    _SCALED_RESIDUAL = _lambda_function(scaled_residual)


class _MendedLayers:
    """A ``layers`` module for a backbone builder that mends what Keras 3 refuses to save or build.

    Every attribute is the real module's; layer constructors get ``/`` in ``name`` replaced by
    ``_`` when ``rename`` is set, and a ``Lambda`` of a Python lambda gets ``lambda_replacement``.
    """

    def __init__(self, layers, rename=False, lambda_replacement=None):
        self._layers = layers
        self._rename = rename
        self._lambda_replacement = lambda_replacement

    def __getattr__(self, attribute):
        value = getattr(self._layers, attribute)
        if attribute == "Lambda" and self._lambda_replacement is not None:
            return self._lambda(value)
        if self._rename and isinstance(value, type):
            return self._renaming(value)
        return value

    def _lambda(self, lambda_class):
        replacement = self._lambda_replacement

        def make(function, *args, **kwargs):
            if getattr(function, "__name__", None) == "<lambda>":
                function = replacement
            return lambda_class(function, *args, **kwargs)

        return make

    @staticmethod
    def _renaming(layer_class):
        @functools.wraps(layer_class, updated=())
        def make(*args, **kwargs):
            if isinstance(kwargs.get("name"), str):
                kwargs["name"] = kwargs["name"].replace("/", "_")
            return layer_class(*args, **kwargs)

        return make


def _mended_backbone_kwargs(name, kwargs):
    layers = kwargs.get("layers")
    if layers is None:
        return kwargs
    if name == _INCEPTION_RESNET:
        return {**kwargs, "layers": _MendedLayers(layers, lambda_replacement=_SCALED_RESIDUAL)}
    if name in _DENSENETS and IS_KERAS_3:
        return {**kwargs, "layers": _MendedLayers(layers, rename=True)}
    return kwargs


def _patch_backbones():
    original = type(Backbones).get_backbone

    @functools.wraps(original)
    def get_backbone(name, *args, **kwargs):
        return original(Backbones, name, *args, **_mended_backbone_kwargs(name, kwargs))

    Backbones.get_backbone = get_backbone


# --- sm.losses and sm.metrics --------------------------------------------------------------------

# Constructor arguments of each sm class, as stored on its instances.
_ARGUMENTS = {
    "JaccardLoss": ("class_weights", "class_indexes", "per_image", "smooth"),
    "DiceLoss": ("beta", "class_weights", "class_indexes", "per_image", "smooth"),
    "BinaryCELoss": (),
    "CategoricalCELoss": ("class_weights", "class_indexes"),
    "CategoricalFocalLoss": ("alpha", "gamma", "class_indexes"),
    "BinaryFocalLoss": ("alpha", "gamma"),
    "IOUScore": ("class_weights", "class_indexes", "threshold", "per_image", "smooth", "name"),
    "FScore": (
        "beta",
        "class_weights",
        "class_indexes",
        "threshold",
        "per_image",
        "smooth",
        "name",
    ),
    "Precision": ("class_weights", "class_indexes", "threshold", "per_image", "smooth", "name"),
    "Recall": ("class_weights", "class_indexes", "threshold", "per_image", "smooth", "name"),
}

#: registered class name -> sm class, for the losses nested in sums and products.
_SM_CLASSES = {}


def _plain(value):
    """A JSON-friendly copy of an option (class weights may be NumPy arrays or scalars)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def _sm_get_config(self):
    return {
        argument: _plain(getattr(self, argument)) for argument in _ARGUMENTS[type(self).__name__]
    }


def _sm_from_config(cls, config):
    config = dict(config)
    if isinstance(config.get("class_weights"), list):
        config["class_weights"] = np.array(config["class_weights"], dtype="float32")
    return cls(**config)


def _nested_config(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def _from_nested_config(config):
    if config["class_name"] not in _SM_CLASSES:
        raise ValueError(
            f"Unknown segmentation_models loss in a saved sum/product. Expected one of "
            f"{sorted(_SM_CLASSES)}. Received: class_name={config['class_name']!r}"
        )
    return _SM_CLASSES[config["class_name"]].from_config(config["config"])


def _sum_get_config(self):
    return {"l1": _nested_config(self.l1), "l2": _nested_config(self.l2)}


def _sum_from_config(cls, config):
    return cls(_from_nested_config(config["l1"]), _from_nested_config(config["l2"]))


def _product_get_config(self):
    return {"loss": _nested_config(self.loss), "multiplier": self.multiplier}


def _product_from_config(cls, config):
    return cls(_from_nested_config(config["loss"]), config["multiplier"])


def _patch_sm_objects():
    classes = {
        cls.__name__: cls
        for module in (sm.losses, sm.metrics)
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, _sm_objects.KerasObject)
        and cls not in (_sm_objects.Loss, _sm_objects.Metric, _sm_objects.KerasObject)
    }
    classes.pop("SumOfLosses", None)
    classes.pop("MultipliedLoss", None)
    unknown = sorted(set(classes) - set(_ARGUMENTS))
    if unknown:
        raise ImportError(
            f"sm_pixel_ce knows the constructor arguments of {sorted(_ARGUMENTS)}, but this "
            f"segmentation_models {sm.__version__} also has {unknown}. Received: an sm version "
            "sm_pixel_ce does not support; pin segmentation-models==1.0.1."
        )
    for name, cls in classes.items():
        cls.get_config = _sm_get_config
        cls.from_config = classmethod(_sm_from_config)
    _sm_objects.SumOfLosses.get_config = _sum_get_config
    _sm_objects.SumOfLosses.from_config = classmethod(_sum_from_config)
    _sm_objects.MultipliedLoss.get_config = _product_get_config
    _sm_objects.MultipliedLoss.from_config = classmethod(_product_from_config)
    classes["SumOfLosses"] = _sm_objects.SumOfLosses
    classes["MultipliedLoss"] = _sm_objects.MultipliedLoss
    for name, cls in classes.items():
        _SM_CLASSES[name] = serializable(cls)


# --- input sizes ---------------------------------------------------------------------------------


def _size_checked(architecture, build):
    """``build`` (e.g. ``sm.Unet``) that checks ``input_shape`` first and checks ``None`` sizes
    later."""
    signature = inspect.signature(build)

    @functools.wraps(build)
    def checked(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return build(*args, **kwargs)  # segmentation_models' own message
        bound.apply_defaults()
        arguments = bound.arguments
        backbone = arguments.get("backbone_name")
        input_shape = arguments.get("input_shape")
        check_input_shape(
            input_shape, architecture, backbone, arguments.get("downsample_factor", 8)
        )
        model = build(*args, **kwargs)
        if all(input_shape[axis] is not None for axis in spatial_axes()):
            return model
        return SizeCheckedModel(
            inputs=model.input,
            outputs=model.output,
            name=model.name,
            architecture=architecture,
            backbone=backbone,
        )

    return checked


def _patch_architectures():
    for architecture in ARCHITECTURES:
        build = getattr(sm, architecture)
        if not getattr(build, "_sm_pixel_ce_checked", False):
            checked = _size_checked(architecture, build)
            checked._sm_pixel_ce_checked = True
            setattr(sm, architecture, checked)


def supported_backbones():
    """Every backbone name segmentation_models offers (``sm.Backbones.models_names()``).

    Returns:
        A list of names, in segmentation_models' order.

    Raises:
        ImportError: segmentation_models is not installed (possible off TensorFlow only).
    """
    if sm is None:
        raise ImportError(
            "supported_backbones needs segmentation_models: pip install segmentation-models==1.0.1"
        )
    return list(Backbones.models_names())


if sm is not None:
    _patch_backbones()
    _patch_sm_objects()
    _patch_architectures()
