"""Runs a benchmark's worker for one Keras backend in a process of its own.

The speed benchmarks time each backend in a fresh process (a process holds
one Keras backend), started from the one invocation that collects the
results. `run_worker` gives the worker this checkout's `keras_latent`, the
backend, and, for CPU timings, one thread in every framework, so that the
process's CPU time is the time of the computation whatever else the
machine runs; the worker writes its results as JSON, returned here.
"""

import json
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
# XLA's CPU client (JAX, TensorFlow's XLA) by its flags; PyTorch, OpenMP,
# MKL and TensorFlow's own pools by theirs (TensorFlow fixes its pools
# once, before its first op).
SINGLE_THREAD_XLA_FLAGS = (
    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
SINGLE_THREAD_ENVIRONMENT = {
    "XLA_FLAGS": SINGLE_THREAD_XLA_FLAGS,
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}


def run_worker(backend, command, output_json, single_thread=True):
    """Runs `command` under `backend`; returns the JSON it wrote.

    Args:
        backend: the value of `KERAS_BACKEND` for the worker.
        command: the worker's command line, the interpreter first.
        output_json: the path the worker writes its results to.
        single_thread: whether to hold every framework to one thread.
    """
    environment = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        # The worker imports the keras_latent of this checkout, not
        # whichever one is installed.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    if single_thread:
        environment.update(SINGLE_THREAD_ENVIRONMENT)
    print(f"$ KERAS_BACKEND={backend}", " ".join(command[1:]), flush=True)
    subprocess.run(command, env=environment, check=True, cwd=ROOT)
    with open(output_json) as file:
        return json.load(file)
