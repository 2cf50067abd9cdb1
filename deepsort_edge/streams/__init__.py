"""Running trackers over streams: the frame loop, many streams, identities across cameras.

:mod:`.pipeline` (detections and frames -> tracker -> results), :mod:`.detect_track`
(detector -> extractor -> tracker on a frame source), :mod:`.multistream`
(``MultiStreamTracker``: many streams in one process), :mod:`.distributed`
(the same on Ray) and :mod:`.identities` (``IdentityRegistry``: global ids
across streams; its parts in :mod:`.identity_store`, :mod:`.identity_decisions`,
:mod:`.identity_topology`, :mod:`.identity_state` and, on Ray, :mod:`.identity_actor`).
The public names are imported from :mod:`deepsort_edge`.
"""
