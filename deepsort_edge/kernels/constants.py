"""Integer codes shared by the frame kernel and the track store (``tracks.py``).

Track states, and the entries of the store's ``counts`` array, which the
frame kernel changes in place.
"""

from __future__ import annotations

# Track states.
TENTATIVE = 0
CONFIRMED = 1

# Entries of ``counts``: live slots, free slots, the next track id.
LIVE = 0
FREE = 1
NEXT_ID = 2
