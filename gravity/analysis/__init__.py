"""Stems in, request descriptors out: reading, loudness, features, classification, tempo.

:func:`analyze_stems` is the entry point; see :mod:`gravity.analysis.stems` for the
descriptors and the bad-file policy.
"""

from gravity.analysis.stems import (
    ANALYSIS_RATE,
    AUDIO_EXTENSIONS,
    BAND_EDGES_HZ,
    FEATURE_CLASSES,
    LAYOUT_NAMES,
    AnalysisError,
    AnalysisResult,
    StemFeatures,
    StemReport,
    analyze_stems,
    class_from_name,
    classify_features,
    compute_features,
    find_stems,
    integrated_loudness,
    read_audio,
    sanitize_id,
)

__all__ = [
    "AnalysisError", "StemFeatures", "StemReport", "AnalysisResult", "analyze_stems", "find_stems",
    "read_audio", "integrated_loudness", "compute_features", "class_from_name", "classify_features",
    "sanitize_id", "LAYOUT_NAMES", "ANALYSIS_RATE", "BAND_EDGES_HZ", "AUDIO_EXTENSIONS", "FEATURE_CLASSES",
]
