"""Detection on curves of any origin: events (bumps, spikes, phase changes), competition, the run-file analysis.

The names most users need are re-exported here::

    from bumps.detect import find_events, EventParams, find_bumps, BumpParams, analyze, load_source
"""

from bumps.detect.analysis import analyze, load_source
from bumps.detect.bumps import Bump, BumpParams, check_curves, find_bumps, orient_by_peak
from bumps.detect.competition import CompetitionEvent, find_competition
from bumps.detect.events import Event, EventParams, find_events

__all__ = [
    "Bump",
    "BumpParams",
    "CompetitionEvent",
    "Event",
    "EventParams",
    "analyze",
    "check_curves",
    "find_bumps",
    "find_competition",
    "find_events",
    "load_source",
    "orient_by_peak",
]
