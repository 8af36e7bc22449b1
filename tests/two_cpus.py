"""The tf.distribute checks' devices: two logical CPUs and ONE ``MirroredStrategy`` over them per
process. The checks of ``tests/distributed_check.py`` (with those of
``boundary_distributed_check.py`` and ``topk_distributed_check.py``) run in one process, one
TensorFlow import for all: a second strategy there would clash with the first's collective
instance keys ("Shape mismatch in the collective instance"), so every check uses this one.

    import two_cpus
    two_cpus.configure()  # before TensorFlow's runtime starts (before importing sm_pixel_ce)
    strategy = two_cpus.strategy()
"""

import tensorflow as tf

_DONE = {}


def configure():
    """Split the CPU into two logical devices (once per process)."""
    if "devices" not in _DONE:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        _DONE["devices"] = True


def strategy():
    """This process's ``MirroredStrategy`` over ``/cpu:0`` and ``/cpu:1``."""
    if "strategy" not in _DONE:
        configure()
        _DONE["strategy"] = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    return _DONE["strategy"]
