"""bumps.threads: the one thread policy of every training command."""

import pytest
import torch

from bumps.errors import BumpsError
from bumps.threads import (
    SMALL_STEP_ELEMENTS,
    TORCH_DEFAULT_THREADS,
    choose_threads,
    idle_cores,
    threads_for,
    usable_cores,
)


def test_an_explicit_count_wins_and_a_negative_one_is_refused():
    assert choose_threads(10**9, "cpu", requested=3, idle=0.0) == 3
    with pytest.raises(BumpsError, match="`threads` must be >= 0"):
        choose_threads(1, "cpu", requested=-1)


def test_small_steps_get_one_thread_on_the_cpu():
    assert choose_threads(SMALL_STEP_ELEMENTS - 1, "cpu", idle=64.0) == 1


def test_large_steps_get_the_default_capped_at_the_idle_cores():
    default = min(TORCH_DEFAULT_THREADS, usable_cores())
    assert choose_threads(SMALL_STEP_ELEMENTS, "cpu", idle=1000.0) == default
    assert choose_threads(SMALL_STEP_ELEMENTS, "cpu", idle=0.0) == 1  # never zero
    assert choose_threads(SMALL_STEP_ELEMENTS, "cpu", idle=1.4) == 1  # a core mostly busy is busy
    assert choose_threads(SMALL_STEP_ELEMENTS, "cpu", idle=1.6) == min(default, 2)


def test_idle_cores_is_between_zero_and_the_usable_cores():
    free = idle_cores(0.05)
    assert 0.0 <= free <= usable_cores()


def test_threads_for_sets_and_restores():
    before = torch.get_num_threads()
    with threads_for(1, "cpu") as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
