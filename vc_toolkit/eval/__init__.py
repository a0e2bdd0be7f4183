"""Objective evaluation of converted speech (MCD, F0, V/UV, duration)."""
