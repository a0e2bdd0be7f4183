"""vc_toolkit: staged, reproducible recipes for FastSpeech2-style voice-conversion models."""

__version__ = "0.1.0"
