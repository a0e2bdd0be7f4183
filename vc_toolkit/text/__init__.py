"""Text input (library layer): front-ends that turn transcripts into symbols, the symbol table.

* :mod:`vc_toolkit.text.frontend`: the ``FRONTENDS`` registry (``espeak``, ``chars``,
  ``openjtalk``) and :func:`~vc_toolkit.text.frontend.text_to_ids`;
* :mod:`vc_toolkit.text.symbols`: :class:`~vc_toolkit.text.symbols.SymbolTable`;
* :mod:`vc_toolkit.text.espeak`: the libespeak-ng binding (phonemes, and the synthesis
  the demo corpora use);
* :mod:`vc_toolkit.text.phone_times`: espeak-ng's own phoneme timings of ``demo_tts``
  against the durations of an alignment.

Imports only the core layer.
"""
