"""API versions, as Monday schedules them: which version serves a request's API-Version."""

from __future__ import annotations

import re
from dataclasses import dataclass

from emulator.errors import ApiError

CURRENT = "2026-10"
MAINTENANCE = "2026-07"
# Quarterly versions that existed and are deprecated ("earlier than 2025-04").
DEPRECATED = frozenset(
    f"{year}-{month}" for year in (2023, 2024, 2025) for month in ("01", "04", "07", "10")
) - {"2023-01", "2025-04", "2025-07", "2025-10"}

_FORMAT = re.compile(r"^\d{4}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Version:
    """One entry of `versions`: Version { display_name kind value }."""

    value: str
    kind: str
    display_name: str


VERSIONS: tuple[Version, ...] = (
    Version("2025-04", "old_previous_maintenance", "2025-04"),
    Version("2025-07", "old_previous_maintenance", "2025-07"),
    Version("2025-10", "old_previous_maintenance", "2025-10"),
    Version("2026-01", "old__maintenance", "2026-01"),
    Version("2026-04", "previous_maintenance", "2026-04 (Previous maintenance)"),
    Version("2026-07", "maintenance", "2026-07 (Maintenance)"),
    Version("2026-10", "current", "2026-10 (Current)"),
    Version("2027-01", "release_candidate", "2027-01 (Release candidate)"),
)
_BY_VALUE = {v.value: v for v in VERSIONS}


def serving(requested: str | None) -> Version:
    """The version that answers: no header or an unknown name gets Current, a deprecated one
    Maintenance, a malformed one (e.g. "2023") InvalidVersionException."""
    if requested is None or requested.strip() == "":
        return _BY_VALUE[CURRENT]
    requested = requested.strip()
    if not _FORMAT.match(requested):
        raise ApiError(
            "InvalidVersionException",
            f"Invalid API version '{requested}'. Use the format YYYY-MM, e.g. {CURRENT}",
            status_code=400,
        )
    if requested in _BY_VALUE:
        return _BY_VALUE[requested]
    return _BY_VALUE[MAINTENANCE if requested in DEPRECATED else CURRENT]


def legacy_complexity_error(version: Version) -> bool:
    """Whether the complexity error still carries the pre-2025-07 extra fields."""
    return version.value < "2025-07"
