"""Binaural / stereo / Ambisonics rendering of a scene from stems (issue #3)."""
