"""Conversion-time pieces: vocoders (log-mel → waveform)."""
