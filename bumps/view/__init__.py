"""``bumps view``: a live page in the browser for a run, a folder of runs or a sweep.

:func:`serve` runs a read-only standard-library HTTP server on 127.0.0.1
(:mod:`bumps.view.server`); :func:`export_page` writes the same page as one self-contained HTML
file (:mod:`bumps.view.page`). The data the page draws is built by :mod:`bumps.view.data` (one
run; its charts :mod:`bumps.view.charts`, its events :mod:`bumps.view.events`) and
:mod:`bumps.view.files` (what may be read, and folders), downsampled for display by
:mod:`bumps.view.downsample` with every shown value a recorded one.
"""

from bumps.view.files import Target
from bumps.view.page import export_page
from bumps.view.server import make_server, serve, url_of

__all__ = ["Target", "export_page", "make_server", "serve", "url_of"]
