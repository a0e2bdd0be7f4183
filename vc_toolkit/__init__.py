"""vc_toolkit: staged, reproducible recipes for FastSpeech2-style voice-conversion models."""

__version__ = "0.1.0"

import warnings as _warnings

# pyworld 0.3.5 imports pkg_resources at import time (setuptools<81 is pinned for it).
_warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
