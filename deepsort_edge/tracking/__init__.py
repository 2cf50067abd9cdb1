"""The tracker, its state and its rules (the association itself runs in :mod:`deepsort_edge.kernels`).

:mod:`.tracker` (``DeepSORTTracker``: input checks, the extractor, one kernel
call a frame), :mod:`.settings` (the settings schema and presets), :mod:`.tracks`
(track storage as parallel arrays, ``TrackView``), :mod:`.state` (saving and
loading tracker state), :mod:`.validation` (input checks and the drop/raise
policy), :mod:`.boxes` (box formats), :mod:`.camera_motion` (camera-motion
compensation) and :mod:`.interpolation` (offline gap filling). The public
names are imported from :mod:`deepsort_edge`.
"""
