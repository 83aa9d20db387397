"""The SMAC v1 maps' episode limits, without torch: the config checks read them before anything is built."""
from __future__ import annotations

import warnings

#: Episode limits of the SMAC v1 maps (StarCraft II's map files), by map name; SMAX's own default is 100 for all.
SMAC_EPISODE_LIMITS = {
    "3m": 60, "8m": 120, "25m": 150, "5m_vs_6m": 70, "10m_vs_11m": 150, "27m_vs_30m": 180,
    "2s3z": 120, "3s5z": 150, "3s5z_vs_3s6z": 170, "3s_vs_5z": 250, "6h_vs_8z": 150,
}


def default_episode_limit(map_name: str) -> int:
    """SMAC's episode limit of ``map_name``; SMAX's 100 (with a warning) for a map SMAC does not list."""
    if map_name not in SMAC_EPISODE_LIMITS:
        warnings.warn(f"map {map_name!r} has no known SMAC episode limit; using SMAX's 100", stacklevel=3)
        return 100
    return SMAC_EPISODE_LIMITS[map_name]
