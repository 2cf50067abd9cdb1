"""Input and output: MOTChallenge files, video and image sources, TrackEval scoring.

:mod:`.mot` (reading and writing MOT detection and result files, sequences),
:mod:`.video` (frame sources, prefetching, the annotated video writer) and
:mod:`.evaluation` (HOTA / MOTA / IDF1 through TrackEval; needs the eval extra).
"""
