"""bumps.memory: the size guard refuses what cannot fit, with the estimate, before anything is allocated."""

import pytest

from bumps.errors import BumpsError
from bumps.memory import available_bytes, check_fits, format_bytes


def test_format_bytes():
    assert [format_bytes(n) for n in (512, 1500, 3.2e6, 1.5e12)] == ["512 B", "1.5 kB", "3.2 MB", "1.5 TB"]


def test_available_memory_is_known_on_the_cpu():
    free = available_bytes("cpu")
    assert free is not None and free > 0
    assert available_bytes("meta") is None


def test_refusal_names_the_estimate_its_parts_and_the_way_out():
    huge = {"records": 4 * 10**18, "state": 10**18, "small": 1}
    with pytest.raises(BumpsError) as err:
        check_fits(huge, "this run", "cpu", hint="reduce `seeds`")
    msg = str(err.value)
    assert msg.startswith("this run needs about 5 EB of memory (records 4 EB, state 1 EB, small 1 B) but ")
    assert msg.endswith("reduce `seeds`, or pass `force` to try anyway") and "\n" not in msg


def test_fitting_runs_and_forced_runs_pass():
    assert check_fits({"a": 1000, "b": 24}, "x") == 1024
    assert check_fits({"a": 10**20}, "x", force=True) == 10**20
