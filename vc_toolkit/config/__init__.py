"""Typed, strictly validated configs: spk (dataset version), tag (experiment), voc (vocoder)."""

from vc_toolkit.config.core import ConfigError, build, to_dict
from vc_toolkit.config.resolve import load_spk, load_tag, load_voc
from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.config.tag import TagConfig
from vc_toolkit.config.voc import VocConfig

__all__ = [
    "ConfigError",
    "SpkConfig",
    "TagConfig",
    "VocConfig",
    "build",
    "load_spk",
    "load_tag",
    "load_voc",
    "to_dict",
]
