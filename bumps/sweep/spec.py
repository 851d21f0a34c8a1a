"""What a sweep's runs are: the TOML spec (checked against the command's config fields), its runs and their packing.

Run ids and the spec fingerprint are hashes of JSON dumps of the resolved configs; sweep folders of
earlier versions name their runs by them, so how they are computed must not change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from bumps.errors import BumpsError, did_you_mean
from bumps.lowrank.model import LowRankConfig
from bumps.modadd.model import ModAddConfig, shape_key

COMMANDS = ("grok", "simulate")


# ----------------------------------------------------------------------------- config fields and values


def config_class(command: str) -> type:
    """The config dataclass of ``command`` (``grok``: ModAddConfig, ``simulate``: LowRankConfig)."""
    return ModAddConfig if command == "grok" else LowRankConfig


def config_fields(command: str) -> dict[str, Any]:
    """Field name -> resolved type hint of the command's config dataclass."""
    cls = config_class(command)
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _describe(hint: Any) -> str:
    """A type hint in words, for error lines ("an integer", "a list of numbers")."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is tuple:
        return f"a list of {len(args)} {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def coerce(value: Any, hint: Any) -> Any:
    """``value`` (from TOML or JSON) as the config field type ``hint``; TypeError if it is not one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        for arg in args:
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return coerce(value, arg)
            except TypeError:
                pass
    elif origin in (tuple, list):
        if isinstance(value, list | tuple):
            if origin is list:
                return [coerce(v, args[0]) for v in value]
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(coerce(v, args[0]) for v in value)
            if len(value) == len(args):
                return tuple(coerce(v, a) for v, a in zip(value, args, strict=True))
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    raise TypeError(_describe(hint))


def _jsonable(value: Any) -> Any:
    """``value`` with every tuple a list (as JSON reads it back), dicts and lists copied."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def make_config(command: str, params: dict[str, Any]) -> Any:
    """The validated config object for ``params`` (field names). Validated on cpu: see :func:`expand`."""
    params = {**params, "device": "cpu"}
    if command == "grok":
        preset = params.pop("preset", "nanda")
        return ModAddConfig.from_preset(preset, **params)
    return LowRankConfig(**params).validate()


def config_dict(command: str, cfg: Any) -> dict:
    """The config as a JSON-ready dict without its device (what a run id hashes)."""
    d = cfg.as_dict() if hasattr(cfg, "as_dict") else dataclasses.asdict(cfg)
    d = _jsonable(d)
    d.pop("device", None)
    return d


def config_from_dict(command: str, d: dict, device: str = "cpu") -> Any:
    """Rebuild a config object from its :func:`config_dict` (no validation; that happened at expansion)."""
    fields = config_fields(command)
    values = {k: coerce(v, fields[k]) for k, v in d.items() if k in fields}
    return config_class(command)(**{**values, "device": device})


# ----------------------------------------------------------------------------- the spec


@dataclasses.dataclass(frozen=True)
class Spec:
    """A parsed, type-checked sweep spec (config field names, values of the field types)."""

    command: str
    base: dict[str, Any]
    grid: dict[str, list]

    def as_dict(self) -> dict:
        """The spec as JSON-ready data (as ``sweep.json`` stores it)."""
        return _jsonable({"command": self.command, "base": self.base, "grid": self.grid})

    def fingerprint(self) -> str:
        """Hash of what the runs are (the device is where they run, not what they are)."""
        d = self.as_dict()
        d["base"].pop("device", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and check a TOML spec file.

    Parameters
    ----------
    path : str or os.PathLike
        The spec ``.toml`` file (``command = ...``, ``[base]``, ``[grid]``).

    Returns
    -------
    Spec
        The checked spec.

    Raises
    ------
    BumpsError
        One line naming what is wrong: a missing or unreadable file, invalid TOML, or what
        :func:`parse_spec` refuses.
    """
    path = Path(path)
    if path.is_dir():
        raise BumpsError(f"{path} is a directory; give a spec .toml file (or --status to show a sweep folder)")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BumpsError(f"no such spec file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BumpsError(f"cannot read spec {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BumpsError(f"{path} is not valid TOML: {exc}") from None
    return parse_spec(data, str(path))


def parse_spec(data: dict, where: str = "spec") -> Spec:
    """Check a spec dict: known command, known flags of that command, values of the right type, a grid.

    Parameters
    ----------
    data : dict
        The spec as TOML reads it: ``command``, and the tables ``base`` and ``grid`` (flag -> value,
        flag -> list of values). Flags may be spelled with ``-`` or ``_``.
    where : str, optional
        What to call the spec in error lines (the file name).

    Returns
    -------
    Spec
        The spec with config field names and values coerced to the field types.

    Raises
    ------
    BumpsError
        One line for the first thing wrong (unknown key, command or flag; a value of the wrong
        type; an empty grid; a flag in both tables; ``device`` as a grid axis).
    """
    extra = sorted(set(data) - {"command", "base", "grid"})
    if extra:
        raise BumpsError(
            f"{where}: unknown key {extra[0]!r}{did_you_mean(extra[0], ['command', 'base', 'grid'])}; "
            "a spec has command = ..., [base] and [grid]"
        )
    command = data.get("command")
    if command is None:
        raise BumpsError(f'{where}: no command; add command = "grok" or command = "simulate"')
    if command not in COMMANDS:
        hint = did_you_mean(str(command), list(COMMANDS))
        raise BumpsError(f'{where}: unknown command {command!r}{hint}; use "grok" or "simulate"')
    flags = _Flags(command, where)
    base = _parse_base(_table(data, "base", where), flags)
    grid = _parse_grid(_table(data, "grid", where), base, flags)
    return Spec(command, base, grid)


class _Flags:
    """The flags of one command, for one spec: their field names and checked values, or error lines."""

    def __init__(self, command: str, where: str):
        self.command, self.where = command, where
        self.fields = config_fields(command)
        self.known = ", ".join(sorted(k.replace("_", "-") for k in self.fields))

    def name(self, key: str, section: str) -> str:
        """The field name of flag ``key`` (``-`` or ``_`` spelling)."""
        name = key.replace("-", "_")
        if name not in self.fields:
            hint = did_you_mean(key.replace("_", "-"), [k.replace("_", "-") for k in self.fields])
            raise BumpsError(
                f"{self.where} [{section}]: unknown {self.command} flag {key!r}{hint}; known flags: {self.known}"
            )
        return name

    def value(self, name: str, key: str, section: str, value: Any) -> Any:
        """``value`` coerced to the type of field ``name``."""
        try:
            return coerce(value, self.fields[name])
        except TypeError:
            raise BumpsError(
                f"{self.where} [{section}] {key}: {value!r} is not {_describe(self.fields[name])}"
            ) from None


def _table(data: dict, name: str, where: str) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise BumpsError(f"{where}: {name} must be a table ([{name}] followed by flag = value lines)")
    return value


def _parse_base(table: dict, flags: _Flags) -> dict[str, Any]:
    base: dict[str, Any] = {}
    for key, value in table.items():
        name = flags.name(key, "base")
        if name in base:
            raise BumpsError(f"{flags.where} [base]: {key!r} is given twice (as - and _ spellings)")
        base[name] = flags.value(name, key, "base", value)
    return base


def _parse_grid(table: dict, base: dict[str, Any], flags: _Flags) -> dict[str, list]:
    where = flags.where
    if not table:
        raise BumpsError(
            f"{where}: the [grid] is empty, so there is nothing to sweep; "
            "add at least one flag with a list of values, e.g. seed = [0, 1]"
        )
    grid: dict[str, list] = {}
    for key, values in table.items():
        name = flags.name(key, "grid")
        if name in base or name in grid:
            raise BumpsError(f"{where} [grid]: {key!r} is also in [base] (or given twice); give it once")
        if name == "device":
            raise BumpsError(
                f"{where} [grid]: device cannot be a grid axis (it is where runs go, not what they "
                "are); set it in [base] or with --device"
            )
        if not isinstance(values, list):
            raise BumpsError(
                f"{where} [grid] {key} must be a list of values (got {values!r}); put a single value in [base]"
            )
        if not values:
            raise BumpsError(f"{where} [grid] {key} = [] is empty, so the grid has no runs; give it values")
        grid[name] = [flags.value(name, key, "grid", v) for v in values]
    return grid


# ----------------------------------------------------------------------------- runs


@dataclasses.dataclass
class Run:
    """One grid point: its id, grid values, full resolved config (None if invalid) or its error line."""

    id: str
    grid: dict[str, Any]
    config: dict | None
    error: str | None = None

    @property
    def run_file(self) -> str:
        """The run file, relative to the sweep folder."""
        return f"runs/{self.id}.pt"


def run_id(command: str, what: dict) -> str:
    """The stable id of a run: a hash of its command and resolved config (or, if invalid, its params)."""
    blob = json.dumps({"command": command, **what}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def expand(spec: Spec) -> list[Run]:
    """The grid's runs in grid order (first axis slowest); identical configs are one run.

    A grid point whose values are invalid (e.g. p = 8, not prime) becomes a run with its error
    line: it fails alone, the others go on. Configs are validated on cpu; the device is checked
    where the runs go (driver for local runs, the job for Slurm, whose login node may have no GPU).

    Parameters
    ----------
    spec : Spec
        The checked spec; its ``[base]`` device is left out of every config.

    Returns
    -------
    list of Run
        One run per distinct resolved config, in grid order.
    """
    keys = list(spec.grid)
    runs: list[Run] = []
    seen: set[str] = set()
    base = {k: v for k, v in spec.base.items() if k != "device"}
    for values in itertools.product(*(spec.grid[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        try:
            cfg = make_config(spec.command, {**base, **point})
        except BumpsError as exc:
            rid = run_id(spec.command, {"params": _jsonable({**base, **point})})
            run = Run(rid, _jsonable(point), None, str(exc))
        else:
            config = config_dict(spec.command, cfg)
            run = Run(run_id(spec.command, {"config": config}), _jsonable(point), config)
        if run.id not in seen:
            seen.add(run.id)
            runs.append(run)
    return runs


def pack(keys: list, max_per_group: int) -> list[list[int]]:
    """Indices grouped by equal key (first-seen order), each group split into near-equal chunks of <= M."""
    if max_per_group < 1:
        raise BumpsError(f"--models-per-job must be >= 1 (got {max_per_group})")
    by_key: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    groups = []
    for members in by_key.values():
        n_chunks = math.ceil(len(members) / max_per_group)
        sizes = [len(members) // n_chunks + (i < len(members) % n_chunks) for i in range(n_chunks)]
        starts = list(itertools.accumulate(sizes, initial=0))
        groups += [members[a:b] for a, b in zip(starts, starts[1:], strict=False)]
    return groups


def shape_keys(command: str, runs: list[Run]) -> list:
    """Packing keys: grok runs share a job only with equal shape_key; simulate runs with any."""
    if command != "grok":
        return [None] * len(runs)
    return [shape_key(config_from_dict(command, r.config)) for r in runs]
