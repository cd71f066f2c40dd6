"""pprof profiles and goroutine dumps -> deduplicated stacks and per-snapshot samples (pure, no I/O).

`normalize_profile` is the one entry point every door uses; see profile.py for the formats it sniffs.
"""

from pipeline.normalize.pprof.profile import (
    GOROUTINE_TYPES,
    HEAP_TYPES,
    PROFILE_TYPES,
    SIGNAL,
    PprofLimits,
    ProfileMeta,
    ProfileResult,
    normalize_profile,
    parse_profile,
    snapshot_id,
)

__all__ = [
    "GOROUTINE_TYPES", "HEAP_TYPES", "PROFILE_TYPES", "SIGNAL", "PprofLimits", "ProfileMeta", "ProfileResult",
    "normalize_profile", "parse_profile", "snapshot_id",
]
