"""Choosing the tf.distribute strategy.

- ``default``: one device.
- ``mirrored``: MirroredStrategy over the local GPUs (or logical CPUs).
- ``multiworker``: MultiWorkerMirroredStrategy; reads TF_CONFIG. Collective
  operations time out (``collective_timeout`` seconds) so that a dead worker
  stops the run with an error instead of hanging it.
- ``auto``: mirrored when more than one GPU is visible, else default.
``cpu_replicas`` splits the CPU into N logical devices (must run before any
other TensorFlow work), so mirrored training can be tried without GPUs.
"""

import json
import os

import tensorflow as tf

from tfalign.errors import UserError

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


def split_cpu(replicas: int) -> list[str]:
    cpu = tf.config.list_physical_devices("CPU")[0]
    if replicas > 1:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
        except RuntimeError as error:
            raise UserError(f"cpu_replicas: must be set before TensorFlow starts: {error}",
                            field="cpu_replicas") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")][: max(replicas, 1)]


def make_strategy(name: str = "auto", cpu_replicas: int = 0, collective_timeout: float = 300.0):
    if name not in STRATEGIES:
        raise UserError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "multiworker":  # must come before anything that starts TensorFlow's context
        return _multiworker(cpu_replicas, collective_timeout)
    cpus = split_cpu(cpu_replicas) if cpu_replicas else []
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 or cpu_replicas > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    devices = [d.name for d in gpus] if gpus else (cpus or None)
    return tf.distribute.MirroredStrategy(devices=devices)


def _multiworker(cpu_replicas, collective_timeout):
    if "TF_CONFIG" not in os.environ:
        raise UserError("strategy 'multiworker' needs TF_CONFIG (see the README's example)")
    try:
        json.loads(os.environ["TF_CONFIG"])
    except json.JSONDecodeError as error:
        raise UserError(f"TF_CONFIG is not valid JSON: {error}") from None
    if cpu_replicas > 1:
        raise UserError("cpu_replicas: does not combine with the multiworker strategy (one CPU device a worker)",
                        field="cpu_replicas")
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and
                                    "chief" not in resolver.cluster_spec().as_dict())


def describe_strategy(strategy) -> dict:
    """What ran a run, for its config.json: the strategy's class, replicas, workers and devices."""
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    workers = sum(len(tasks) for kind, tasks in cluster.items() if kind in ("chief", "worker")) or 1
    try:
        devices = list(strategy.extended.worker_devices)
    except (RuntimeError, AttributeError):  # the default strategy names none: the one device TF chose
        devices = []
    return {"strategy": type(strategy).__name__, "replicas": int(strategy.num_replicas_in_sync),
            "workers": int(workers), "devices": [str(d) for d in devices]}
