"""Appearance (ReID) features: the ONNX Runtime extractor and the models it runs.

:mod:`.embedder` (``DeepSORTFeatureExtractor``), :mod:`.preprocess` (crops:
clip, resize, normalise), :mod:`.providers` (ONNX Runtime execution providers),
:mod:`.runtime` (importing whichever ONNX Runtime build is installed),
:mod:`.model_metadata` (the keys that make a model file self-describing),
:mod:`.quantization` (static int8 of any ONNX ReID model), :mod:`.adaptation`
(a gate and a projection learned from the tracker's own matches) and
:mod:`.export` (timm and OSNet to ONNX; needs the export extra). The public names are
imported from :mod:`deepsort_edge`.
"""
