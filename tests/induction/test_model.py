"""bumps.induction.model: the config's stored form, and where its placement comes from."""

from __future__ import annotations

import pytest

from bumps.errors import BumpsError
from bumps.induction.model import InductionConfig


def test_a_stored_config_loads_back_and_old_files_without_a_placement_load_as_gaps():
    cfg = InductionConfig(seed=3, placement="end")
    assert InductionConfig.from_dict(cfg.as_dict()) == cfg
    stored = cfg.as_dict()
    del stored["placement"]  # written before the field existed, when every run used random gaps
    assert InductionConfig.from_dict(stored).placement == "gaps"
    assert InductionConfig().placement == "consecutive" and InductionConfig().layout.placement == "consecutive"


def test_an_unknown_placement_is_refused():
    with pytest.raises(BumpsError, match="`placement` must be one of"):
        InductionConfig(placement="middle").validate()
