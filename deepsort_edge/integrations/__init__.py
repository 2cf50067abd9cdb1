"""Adapters that plug deepsort-edge into other tracking ecosystems.

- :mod:`~deepsort_edge.integrations.roboflow`: a ``BaseTracker`` named
  ``deepsort`` for roboflow ``trackers`` >= 2.6 (its ``track`` / ``eval`` /
  ``tune`` CLI and tuner).

Nothing is imported here: each adapter imports its ecosystem only when used.
"""
