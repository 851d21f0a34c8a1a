"""Record named series from any PyTorch training loop into a standard, self-describing run file.

A :class:`Recorder` collects scalars and per-component tensors with named axes (``loss_per_digit`` with axes
``("digit",)`` is stored ``[T, digit]``) at the steps its loop records, and writes a run file of kind
``"recorded"`` (:data:`KIND`): the common keys of :mod:`bumps.io.runfile`, every series stacked on time,
``axes`` (series key → axis names after time), and optionally ``competition`` (series key → its unit and
target axis names, for the competition test) and ``signed`` (series whose sign is a gauge). It records the
config (a dataclass or a dict), the seed, the package versions and the command line. The file is written
atomically (:func:`bumps.io.runfile.atomic_save`), autosaved every ``autosave_every`` records with
``final=False``, and read by ``bumps detect``, ``bumps export --to csv`` and ``bumps info``.

Bad input (an undeclared tensor series, a shape that changes between records, a record with other keys
than the first, a step that does not increase) raises :class:`~bumps.errors.BumpsError` after saving what
was recorded, so nothing already recorded is lost.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from bumps.errors import BumpsError
from bumps.io.runfile import atomic_save, check_run, check_writable, new_run, safe_load, versions

KIND = "recorded"
# Keys of a run file that series may not take, and axis names that would clash with tidy-table columns.
RESERVED_KEYS = frozenset({"format", "version", "kind", "config", "step", "axes", "competition", "signed", "command"})
RESERVED_AXES = frozenset({"run", "step", "series", "value", "status"})
META_KEYS = ("seed", "versions", "run_id", "final", "stop_reason", "records", "train_seconds")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def config_dict(config: Any) -> dict:
    """A config as a plain dict: a dataclass instance by :func:`dataclasses.asdict`, a mapping copied.

    Parameters
    ----------
    config : dataclass instance, mapping or None
        The run's parameters; None gives ``{}``.

    Returns
    -------
    dict
        A new dict (tuples kept as tuples).

    Raises
    ------
    BumpsError
        If ``config`` is neither.
    """
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise BumpsError(f"`config` must be a dataclass instance or a dict (got {type(config).__name__})")


def _check_name(name: str, what: str, reserved: frozenset[str]) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BumpsError(f"{what} {name!r} must be a Python identifier (letters, digits, _)")
    if name in reserved:
        raise BumpsError(f"{what} {name!r} is reserved; choose another name (reserved: {', '.join(sorted(reserved))})")


class Recorder:
    """Collect series at a cadence and write them as one run file.

    Parameters
    ----------
    path : str or os.PathLike
        The run file; checked writable at construction.
    config : dataclass instance or dict, optional
        Every parameter of the run; stored flat in the run's ``config``. Its keys may not be one of
        :data:`META_KEYS` (``seed`` excepted: then it must equal ``seed``).
    seed : int, optional
        The run's seed, stored as ``config["seed"]``; None takes ``config["seed"]`` if there is one.
    axes : mapping of str to tuple of str, optional
        Axis names after time of every non-scalar series, e.g. ``{"loss_per_digit": ("digit",)}``.
        A series not listed here must be a scalar (a number or a 0-d tensor).
    every : int, default 1
        :meth:`due` is True at steps that are multiples of ``every``.
    autosave_every : int, default 100
        Save (``final=False``) after every this many records; 0: only on :meth:`save` / :meth:`close`.
    competition : mapping of str to (str, str), optional
        For series with learned units and targets: ``{key: (unit_axis, target_axis)}``, axis names of
        ``axes[key]``; ``bumps detect`` then runs its competition test on them.
    signed : iterable of str, optional
        Series whose sign is a gauge (e.g. an alignment with a direction whose sign is arbitrary).
    command : str, optional
        The command line that made the run; None: ``sys.argv`` joined by spaces.
    extras : callable, optional
        Called at every save; returns more run-file entries (e.g. the state a resume needs). Its keys may
        not be series keys or reserved keys.

    Raises
    ------
    BumpsError
        For a bad name, axis, competition entry, cadence, a config clash, or an unwritable ``path``.
    """

    def __init__(
        self,
        path,
        config: Any = None,
        seed: int | None = None,
        axes: Mapping[str, tuple[str, ...]] | None = None,
        every: int = 1,
        autosave_every: int = 100,
        competition: Mapping[str, tuple[str, str]] | None = None,
        signed=(),
        command: str | None = None,
        extras: Callable[[], dict] | None = None,
    ):
        self.path = check_writable(path)
        self.config = config_dict(config)
        for k in self.config:
            if k in META_KEYS and k != "seed":
                raise BumpsError(f"config key {k!r} is recorded by the recorder itself; rename it")
        if seed is None:
            seed = self.config.get("seed")
        elif "seed" in self.config and self.config["seed"] != seed:
            raise BumpsError(f"`seed` {seed} differs from config['seed'] {self.config['seed']}; give one seed")
        self.seed = seed
        if not isinstance(every, int) or every < 1:
            raise BumpsError(f"`every` must be an integer >= 1 (got {every!r})")
        if not isinstance(autosave_every, int) or autosave_every < 0:
            raise BumpsError(f"`autosave_every` must be an integer >= 0 (got {autosave_every!r})")
        self.every, self.autosave_every = every, autosave_every
        self.axes: dict[str, tuple[str, ...]] = {}
        for key, names in (axes or {}).items():
            _check_name(key, "series", RESERVED_KEYS)
            names = (names,) if isinstance(names, str) else tuple(names)
            for a in names:
                _check_name(a, f"axis of {key!r}", RESERVED_AXES)
            if len(set(names)) != len(names):
                raise BumpsError(f"series {key!r} names an axis twice: {names}")
            self.axes[key] = names
        self.competition: dict[str, tuple[str, str]] = {}
        for key, pair in (competition or {}).items():
            if key not in self.axes or len(tuple(pair)) != 2 or any(a not in self.axes[key] for a in pair):
                raise BumpsError(
                    f"competition entry {key!r}: {tuple(pair)!r} must name two axes of a declared series "
                    f"(its axes: {self.axes.get(key, ())})"
                )
            self.competition[key] = (str(pair[0]), str(pair[1]))
        self.signed = tuple(signed)
        for key in self.signed:
            if key not in self.axes:
                raise BumpsError(f"signed series {key!r} is not among the declared `axes`")
        self.command = command if command is not None else " ".join(sys.argv)
        self.extras = extras
        self.run_id = uuid.uuid4().hex
        self.steps: list[int] = []
        self.values: dict[str, list[torch.Tensor]] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.elapsed_before = 0.0
        self.t0 = time.perf_counter()

    # ------------------------------------------------------------------ recording
    def due(self, step: int) -> bool:
        """Whether ``step`` is a recording step (a multiple of ``every``).

        Parameters
        ----------
        step : int
            The training step.

        Returns
        -------
        bool
            ``step % every == 0``.
        """
        return step % self.every == 0

    def _fail(self, message: str) -> None:
        if self.steps:
            self.save(final=False, stop_reason="error")
            message += f"; the {len(self.steps)} records so far are saved in {self.path}"
        raise BumpsError(message)

    def _as_tensor(self, key: str, value: Any, step: int) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            t = value.detach().to("cpu", torch.float64 if value.dtype == torch.float64 else torch.float32)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            t = torch.tensor(float(value), dtype=torch.float64)
        else:
            try:
                t = torch.as_tensor(value, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError):
                self._fail(f"series {key!r} at step {step}: {type(value).__name__} is not a number or a tensor")
        want = len(self.axes.get(key, ()))
        if t.dim() != want:
            what = f"declared axes {self.axes[key]}" if key in self.axes else "no declared axes (a scalar)"
            self._fail(
                f"series {key!r} at step {step} has shape {tuple(t.shape)} but {what}; "
                f"declare its axes in Recorder(axes={{{key!r}: (...)}})"
                if key not in self.axes
                else f"series {key!r} at step {step} has shape {tuple(t.shape)}, {t.dim()} axes; {what}"
            )
        if key in self.shapes and tuple(t.shape) != self.shapes[key]:
            self._fail(
                f"series {key!r} has shape {tuple(t.shape)} at step {step} but {self.shapes[key]} before; "
                "a series keeps its shape across records"
            )
        return t.clone()

    def record(self, step: int, /, **values: Any) -> None:
        """Record one step's values; autosave when ``autosave_every`` records have been added.

        Parameters
        ----------
        step : int
            The training step; larger than the last recorded one.
        **values
            Series key → a number, a 0-d tensor, or a tensor with one axis per declared axis name. Every
            record has the keys of the first one.

        Raises
        ------
        BumpsError
            If the step does not increase, the keys differ from the first record's, a key is reserved, or a
            value's shape does not match its declared axes or its earlier shape. Nothing is recorded from a
            failed call, and what was recorded before is saved first.
        """
        step = int(step)
        if self.steps and step <= self.steps[-1]:
            self._fail(f"step {step} is not after the last recorded step {self.steps[-1]}")
        if not values:
            self._fail(f"record at step {step} holds no series")
        if self.values and set(values) != set(self.values):
            missing, extra = sorted(set(self.values) - set(values)), sorted(set(values) - set(self.values))
            self._fail(
                f"record at step {step} has other series than the first record (missing {missing}, new {extra}); "
                "record every series at every recorded step (use a second Recorder for another cadence)"
            )
        for key in values:
            if key not in self.values:
                _check_name(key, "series", RESERVED_KEYS)
        converted = {k: self._as_tensor(k, v, step) for k, v in values.items()}
        for key, t in converted.items():  # only now, all values valid, does the record count
            self.shapes.setdefault(key, tuple(t.shape))
            self.values.setdefault(key, []).append(t)
        self.steps.append(step)
        if self.autosave_every and len(self.steps) % self.autosave_every == 0:
            self.save(final=False)

    # ------------------------------------------------------------------ the run file
    @property
    def train_seconds(self) -> float:
        """Seconds since the recorder was made, plus those of the run it resumed."""
        return self.elapsed_before + time.perf_counter() - self.t0

    def as_run(self, final: bool, stop_reason: str | None = None) -> dict:
        """The run dict of everything recorded so far.

        Parameters
        ----------
        final : bool
            Whether the run is complete (False: an autosave, shown ``interrupted`` by ``bumps info``).
        stop_reason : str, optional
            Why the run stopped; None: ``"finished"`` when final, else ``"interrupted"``. Stored as
            ``config["stop_reason"]`` unless it is ``"finished"``.

        Returns
        -------
        dict
            A run of kind :data:`KIND`.
        """
        for key in self.axes:
            if key not in self.values and self.steps:
                raise BumpsError(f"series {key!r} has declared axes but was never recorded")
        config = {
            **self.config,
            "seed": self.seed,
            "versions": versions(),
            "run_id": self.run_id,
            "final": bool(final),
            "records": len(self.steps),
            "train_seconds": self.train_seconds,
        }
        reason = stop_reason or ("finished" if final else "interrupted")
        if reason != "finished":  # a normal end needs none (``bumps info`` then reports the records and last step)
            config["stop_reason"] = reason
        series = {k: torch.stack(v) for k, v in self.values.items()}
        run = new_run(
            KIND,
            config,
            step=torch.tensor(self.steps, dtype=torch.int64),
            axes={k: list(self.axes.get(k, ())) for k in self.values},
            competition={k: list(v) for k, v in self.competition.items()},
            signed=list(self.signed),
            command=self.command,
        )
        extra = self.extras() if self.extras is not None else {}
        clash = sorted(set(extra) & (set(series) | set(run)))
        if clash:
            raise BumpsError(f"`extras` keys {clash} clash with series or run-file keys")
        run.update(series)
        run.update(extra)
        return run

    def save(self, final: bool = False, stop_reason: str | None = None) -> Path:
        """Write the run file atomically (a crash mid-write leaves the previous file intact).

        Parameters
        ----------
        final : bool, default False
            As :meth:`as_run`.
        stop_reason : str, optional
            As :meth:`as_run`.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        return atomic_save(self.as_run(final, stop_reason), self.path)

    def close(self, stop_reason: str = "finished") -> dict:
        """Write the final run file and return it.

        Parameters
        ----------
        stop_reason : str, default "finished"
            Why the run ended.

        Returns
        -------
        dict
            The run as written.
        """
        run = self.as_run(True, stop_reason)
        atomic_save(run, self.path)
        return run

    # ------------------------------------------------------------------ resuming
    def restore(self, run: dict, ignore: tuple[str, ...] = ()) -> None:
        """Continue the records of ``run`` (an autosave of the same run) instead of starting empty.

        Parameters
        ----------
        run : dict
            A loaded run of kind :data:`KIND` written by a recorder with the same settings.
        ignore : tuple of str, default ()
            Config keys that may differ (e.g. the number of steps of a run being extended).

        Raises
        ------
        BumpsError
            If ``run`` is not a recorded run, or its config (outcome keys aside) differs from this one's.
        """
        check_run(run, self.path, KIND)
        stored = {k: v for k, v in run["config"].items() if k not in META_KEYS and k not in ignore}
        mine = {k: v for k, v in self.config.items() if k not in META_KEYS and k not in ignore}
        if _plain(stored) != _plain(mine) or run["config"].get("seed") != self.seed:
            diff = sorted(k for k in set(stored) | set(mine) if _plain(stored.get(k)) != _plain(mine.get(k)))
            raise BumpsError(f"{self.path} was recorded with other settings ({', '.join(diff) or 'seed'}); not resumed")
        self.steps = [int(s) for s in run["step"]]
        self.values = {k: list(torch.as_tensor(run[k]).unbind(0)) for k in run["axes"]}
        self.shapes = {k: tuple(v[0].shape) for k, v in self.values.items() if v}
        self.run_id = str(run["config"].get("run_id", self.run_id))
        self.elapsed_before = float(run["config"].get("train_seconds", 0.0))
        self.t0 = time.perf_counter()


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def load_recorded(path) -> dict:
    """Load a recorded run file (``weights_only=True``) and check its kind and axes.

    Parameters
    ----------
    path : str or os.PathLike
        The run file.

    Returns
    -------
    dict
        The run.

    Raises
    ------
    BumpsError
        If it is not a recorded run, or a series' shape does not match its ``axes`` entry.
    """
    run = check_run(safe_load(path), path, KIND)
    n = len(run["step"])
    for key, names in run.get("axes", {}).items():
        if key not in run or run[key].dim() != 1 + len(names) or run[key].shape[0] != n:
            raise BumpsError(f"{path}: series {key!r} does not match its axes {names} and {n} steps")
    return run
