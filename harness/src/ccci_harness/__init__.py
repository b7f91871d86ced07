"""cc-ci's pytest plugin for recipe tests (the only module a suite imports).

The plugin (registered through the ``pytest11`` entry point) reads the ``CCCI_*`` environment
contract, provides the ``app``, ``http`` and ``page`` fixtures, the ``stage(...)`` and
``phase(...)`` markers, and keeps failure artifacts (screenshot, Playwright trace, last page
HTML, the failing assertion) under ``CCCI_RESULTS_DIR``.
"""

from ccci_harness.contract import App, AppConfig, ContractError, Phase, Stage, WaitTimeout
from ccci_harness.http import AppHttp

__all__ = [
    "App",
    "AppConfig",
    "AppHttp",
    "ContractError",
    "Phase",
    "Stage",
    "WaitTimeout",
]
