"""Errors that are the user's to fix: the CLI prints them as one line, no traceback."""


class UserError(Exception):
    """Bad input (config, corpus, command line, missing prerequisite stage)."""
