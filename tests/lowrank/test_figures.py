"""The toy figures regenerate (slow: about a minute)."""

import pytest

from bumps.lowrank.figures import make_lowrank_figures


@pytest.mark.slow
def test_lowrank_figures_regenerate(tmp_path):
    paths = make_lowrank_figures(tmp_path)
    assert len(paths) == 4 and all(p.stat().st_size > 20_000 for p in paths)
