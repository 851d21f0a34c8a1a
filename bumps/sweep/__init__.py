"""Sweeps: a TOML grid over `grok` or `simulate` flags, run as submitit jobs (local or Slurm).

A spec names a command, the flags every run shares (``[base]``) and the flags to vary
(``[grid]``, their cartesian product)::

    command = "grok"
    [base]
    p = 31
    epochs = 300
    [grid]
    seed = [0, 1]
    lr = [0.001, 0.003]

Each run gets a stable id (a hash of its full resolved config, device excluded) and the run
file ``DIR/runs/<id>.pt``. Grok runs with equal :func:`bumps.modadd.shape_key` are packed into
groups of at most M and trained as one ensemble (``train_many``) inside one job; a simulate job
runs its group one after another. Jobs run in other processes (or on other nodes), so no two of
them ever write one file: each run has its own status file ``DIR/status/<id>.json`` (written
atomically by whoever last touched the run) and a lock ``DIR/status/<id>.lock`` held while it
trains; ``DIR/manifest.json`` is assembled from them by the driver and by ``--status``.

Rerunning the same command skips done runs, waits for runs still alive in jobs of an earlier
(killed) driver, and resubmits the rest; an interrupted grok run continues from its autosave.

Modules, lowest first (each imports only those above it):

* :mod:`~bumps.sweep.spec`: the spec (load, check, coerce), its runs, run ids, packing;
* :mod:`~bumps.sweep.options`: :class:`SweepOptions`;
* :mod:`~bumps.sweep.status`: the folder's files (sweep.json, status files, manifest), liveness;
* :mod:`~bumps.sweep.worker`: the body of one job (:func:`run_group`);
* :mod:`~bumps.sweep.executor`: submitit local / Slurm / inline, checks before submitting;
* :mod:`~bumps.sweep.driver`: :func:`run_sweep` and the drive loop.

The public names of the single-module ``bumps.sweep`` are re-exported here, and so are ``_Liveness``,
``_proc_start`` and ``_RunGroup``: queued submitit jobs pickled by earlier versions name
``bumps.sweep.run_group`` and ``bumps.sweep._RunGroup``.
"""

from bumps.sweep.driver import Interrupted, run_sweep
from bumps.sweep.executor import check_slurm
from bumps.sweep.options import EXECUTORS, MAX_AUTO_MODELS, SweepOptions
from bumps.sweep.spec import (
    COMMANDS,
    Run,
    Spec,
    coerce,
    config_class,
    config_dict,
    config_fields,
    config_from_dict,
    expand,
    load_spec,
    make_config,
    pack,
    parse_spec,
    run_id,
    shape_keys,
)
from bumps.sweep.status import (
    FORMAT,
    STATUSES,
    VERSION,
    _Liveness,
    _proc_start,
    entry_status,
    prepare_dir,
    read_status,
    sweep_status,
    write_manifest,
    write_status,
)
from bumps.sweep.worker import _RunGroup, run_group

__all__ = [
    "COMMANDS",
    "EXECUTORS",
    "FORMAT",
    "MAX_AUTO_MODELS",
    "STATUSES",
    "VERSION",
    "Interrupted",
    "Run",
    "Spec",
    "SweepOptions",
    "_Liveness",
    "_RunGroup",
    "_proc_start",
    "check_slurm",
    "coerce",
    "config_class",
    "config_dict",
    "config_fields",
    "config_from_dict",
    "entry_status",
    "expand",
    "load_spec",
    "make_config",
    "pack",
    "parse_spec",
    "prepare_dir",
    "read_status",
    "run_group",
    "run_id",
    "run_sweep",
    "shape_keys",
    "sweep_status",
    "write_manifest",
    "write_status",
]
