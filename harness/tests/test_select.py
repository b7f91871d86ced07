"""Which tests run in which step."""

from __future__ import annotations

from pathlib import PurePath

import pytest
from ccci_harness.contract import Phase, Stage
from ccci_harness.select import MarkerError, parse_phases, parse_stages, selected


def test_a_file_per_stage_selects_without_markers() -> None:
    up = PurePath("suite/test_upgrade.py")
    assert selected(up, None, None, Stage.UPGRADE, Phase.POST)
    assert not selected(up, None, None, Stage.UPGRADE, Phase.PRE)
    assert not selected(up, None, None, Stage.INSTALL, Phase.CHECK)
    backup = PurePath("test_backup.py")
    assert selected(backup, None, None, Stage.BACKUP_RESTORE, Phase.POST)
    assert not selected(backup, None, None, Stage.UPGRADE, Phase.POST)


def test_other_files_run_whenever_the_app_should_be_healthy() -> None:
    smoke = PurePath("test_smoke.py")
    assert selected(smoke, None, None, Stage.INSTALL, Phase.CHECK)
    assert selected(smoke, None, None, Stage.BACKUP_RESTORE, Phase.POST)
    assert not selected(smoke, None, None, Stage.BACKUP_RESTORE, Phase.MUTATE)


def test_markers_override_the_file_name() -> None:
    f = PurePath("test_install.py")
    pre = frozenset({Phase.PRE})
    both = frozenset({Stage.UPGRADE, Stage.BACKUP_RESTORE})
    assert selected(f, both, pre, Stage.UPGRADE, Phase.PRE)
    assert selected(f, both, pre, Stage.BACKUP_RESTORE, Phase.PRE)
    assert not selected(f, both, pre, Stage.INSTALL, Phase.CHECK)
    assert selected(f, None, frozenset({Phase.CHECK}), Stage.INSTALL, Phase.CHECK)


def test_unknown_marker_values_are_errors_naming_the_choices() -> None:
    assert parse_stages(["backup-restore"], "t") == {Stage.BACKUP_RESTORE}
    with pytest.raises(MarkerError, match="unknown stage 'backup'.*install"):
        parse_stages(["backup"], "t")
    with pytest.raises(MarkerError, match="unknown phase 'seed'"):
        parse_phases(["seed"], "t")
    with pytest.raises(MarkerError):
        parse_phases([], "t")
