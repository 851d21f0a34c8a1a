"""How a sweep runs (executor, jobs, packing, resources): the options of ``bumps sweep``, checked once.

Its own module so the executor and the driver both take it, neither importing the other.
"""

from __future__ import annotations

import dataclasses

from bumps.errors import BumpsError

EXECUTORS = ("local", "slurm", "inline")
MAX_AUTO_MODELS = 32  # auto --models-per-job never packs more than this many runs into one job


@dataclasses.dataclass
class SweepOptions:
    """Where and how the runs of a sweep go; the spec says what they are."""

    executor: str = "local"  # local (submitit LocalExecutor) | slurm (job arrays) | inline (this process)
    jobs: int | None = None  # concurrent jobs (local) / array parallelism (slurm); default: cores / all
    models_per_job: int = 0  # 0: auto, ceil(runs of a shape / jobs), at most MAX_AUTO_MODELS
    partition: str | None = None
    gpus_per_job: int = 0
    time_min: int | None = None  # per-job time limit (slurm default 60; local: none)
    cpus_per_job: int | None = None
    device: str | None = None  # overrides [base] device
    poll: float = 0.5

    def validate(self) -> SweepOptions:
        """Return self if every option is in range; else a BumpsError naming the flag."""
        if self.executor not in EXECUTORS:
            raise BumpsError(f"--executor must be one of {', '.join(EXECUTORS)} (got {self.executor!r})")
        for name in ("jobs", "cpus_per_job", "time_min"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise BumpsError(f"--{name.replace('_min', '').replace('_', '-')} must be >= 1 (got {v})")
        if self.models_per_job < 0:
            raise BumpsError(f"--models-per-job must be >= 1, or 0 for auto (got {self.models_per_job})")
        if self.gpus_per_job < 0:
            raise BumpsError(f"--gpus-per-job must be >= 0 (got {self.gpus_per_job})")
        return self
