"""Which tests run in which step: ``stage(...)``/``phase(...)`` markers, else the file name."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath

from ccci_harness.contract import Phase, Stage

# A file per stage works without markers.
FILE_STAGES: dict[str, Stage] = {
    "test_install.py": Stage.INSTALL,
    "test_upgrade.py": Stage.UPGRADE,
    "test_backup.py": Stage.BACKUP_RESTORE,
    "test_backup_restore.py": Stage.BACKUP_RESTORE,
}

# Without a phase marker a test checks a healthy app: the install check, and after each change.
DEFAULT_PHASES = frozenset({Phase.CHECK, Phase.POST})


class MarkerError(ValueError):
    """A ``stage``/``phase`` marker names something that does not exist."""


def parse_stages(values: Iterable[object], where: str) -> frozenset[Stage]:
    """The stages a ``stage(...)`` marker names."""
    out = set()
    for v in values:
        try:
            out.add(Stage(str(v)))
        except ValueError:
            names = ", ".join(s.value for s in Stage)
            raise MarkerError(f"{where}: unknown stage {v!r} (one of {names})") from None
    if not out:
        raise MarkerError(f"{where}: stage() needs at least one stage")
    return frozenset(out)


def parse_phases(values: Iterable[object], where: str) -> frozenset[Phase]:
    """The phases a ``phase(...)`` marker names."""
    out = set()
    for v in values:
        try:
            out.add(Phase(str(v)))
        except ValueError:
            names = ", ".join(p.value for p in Phase)
            raise MarkerError(f"{where}: unknown phase {v!r} (one of {names})") from None
    if not out:
        raise MarkerError(f"{where}: phase() needs at least one phase")
    return frozenset(out)


def selected(
    path: PurePath,
    stages: frozenset[Stage] | None,
    phases: frozenset[Phase] | None,
    stage: Stage,
    phase: Phase,
) -> bool:
    """Whether a test in ``path`` with these markers (``None``: no marker) runs in
    ``stage``/``phase``. Without a stage marker the file name decides (``test_upgrade.py``…);
    other files run in every stage. Without a phase marker: ``check`` and ``post``."""
    if stages is None:
        by_file = FILE_STAGES.get(path.name)
        stages = frozenset({by_file}) if by_file else frozenset(Stage)
    if phases is None:
        phases = DEFAULT_PHASES
    return stage in stages and phase in phases
