"""The generated demo: a seeded synthetic scene and its renderer (no downloads).

:mod:`.synthetic` (people-like boxes moving, occluding and leaving: ground
truth and noisy detections) and :mod:`.scene` (drawing that scene as frames for
``deepsort-edge demo``). Not part of the public API.
"""
