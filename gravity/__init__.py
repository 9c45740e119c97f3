"""Gravity: spatial scenes for immersive audio."""
