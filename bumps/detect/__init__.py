"""Detection on curves of any origin: bumps, competition events, the run-file analysis and its plots.

The names most users need are re-exported here::

    from bumps.detect import find_bumps, BumpParams, analyze, load_source
"""

from bumps.detect.analysis import analyze, load_source
from bumps.detect.bumps import Bump, BumpParams, check_curves, find_bumps, orient_by_peak
from bumps.detect.competition import CompetitionEvent, find_competition

__all__ = [
    "Bump",
    "BumpParams",
    "CompetitionEvent",
    "analyze",
    "check_curves",
    "find_bumps",
    "find_competition",
    "load_source",
    "orient_by_peak",
]
