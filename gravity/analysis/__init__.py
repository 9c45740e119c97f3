"""Stems in, request descriptors out: reading, loudness, features, classification, tempo.

:func:`analyze_stems` is the entry point; see :mod:`gravity.analysis.stems` for the
descriptors and :mod:`gravity.analysis.reading` for the bad-file policy (the one stem reader,
shared with the renderer). Modules: :mod:`~gravity.analysis.reading` (find and read stem
files), :mod:`~gravity.analysis.loudness` (BS.1770 loudness), :mod:`~gravity.analysis.features`
(per-stem features), :mod:`~gravity.analysis.classification` (classes from names and features),
:mod:`~gravity.analysis.tempo` and :mod:`~gravity.analysis.stems` (reports, ids,
:func:`analyze_stems`). Names load lazily, so importing :mod:`gravity.analysis.reading` (as the
renderer does) does not load pyloudnorm, the classifier or the schema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers; at run time they load on first use
    from gravity.analysis.classification import FEATURE_CLASSES, class_from_name, classify_features
    from gravity.analysis.features import (
        ANALYSIS_RATE,
        BAND_EDGES_HZ,
        StemFeatures,
        compute_features,
    )
    from gravity.analysis.loudness import LAYOUT_NAMES, integrated_loudness
    from gravity.analysis.reading import AUDIO_EXTENSIONS, AnalysisError, find_stems, read_audio
    from gravity.analysis.stems import AnalysisResult, StemReport, analyze_stems, sanitize_id

_WHERE = {
    "AnalysisError": "reading",
    "find_stems": "reading",
    "read_audio": "reading",
    "AUDIO_EXTENSIONS": "reading",
    "integrated_loudness": "loudness",
    "LAYOUT_NAMES": "loudness",
    "StemFeatures": "features",
    "compute_features": "features",
    "ANALYSIS_RATE": "features",
    "BAND_EDGES_HZ": "features",
    "class_from_name": "classification",
    "classify_features": "classification",
    "FEATURE_CLASSES": "classification",
    "StemReport": "stems",
    "AnalysisResult": "stems",
    "analyze_stems": "stems",
    "sanitize_id": "stems",
}
__all__ = [
    "AnalysisError",
    "StemFeatures",
    "StemReport",
    "AnalysisResult",
    "analyze_stems",
    "find_stems",
    "read_audio",
    "integrated_loudness",
    "compute_features",
    "class_from_name",
    "classify_features",
    "sanitize_id",
    "LAYOUT_NAMES",
    "ANALYSIS_RATE",
    "BAND_EDGES_HZ",
    "AUDIO_EXTENSIONS",
    "FEATURE_CLASSES",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"gravity.analysis.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'gravity.analysis' has no attribute {name!r}")
