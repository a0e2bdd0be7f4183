"""Named implementations of one config slot, chosen by a ``type:`` value.

Model parts and vocoders are picked by name from a :class:`Registry` (in the
spirit of espnet2's ``ClassChoices``) instead of ``if type == ...`` branches:
the config names the choice (``type: ar`` under ``model.pitch_predictor``), the registry
maps the name to a class, and the class implements the slot's interface.
Adding a variant is one class, one ``@REGISTRY.register("name")`` line and one
config choice.

Example:
    >>> SHAPES = Registry("demo.shape")
    >>> @SHAPES.register("square")
    ... class Square:
    ...     pass
    >>> SHAPES.get("square").__name__, SHAPES.choices()
    ('Square', ('square',))
    >>> try:
    ...     SHAPES.get("sqare")
    ... except ConfigError as err:
    ...     print(err)
    demo.shape.type: unknown choice 'sqare' (did you mean 'square'?) (choices: 'square')
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from vc_toolkit.config.core import ConfigError

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Choices of one slot, in registration order.

    Args:
        slot: The config block whose ``type`` selects the class, e.g.
            ``"model.pitch_predictor"`` (used in messages).
    """

    def __init__(self, slot: str) -> None:
        self.slot = slot
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator that registers the class under ``name`` (and records it as
        ``cls.registry_name``)."""

        def add(cls: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.slot}.type: {name!r} is already registered")
            self._entries[name] = cls
            cls.registry_name = name
            return cls

        return add

    def get(self, name: str) -> T:
        """The class registered as ``name``.

        Raises:
            ConfigError: unknown name; the message lists the choices.
        """
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            choices = ", ".join(repr(c) for c in self._entries)
            raise ConfigError(
                f"{self.slot}.type: unknown choice {name!r}{hint} (choices: {choices})"
            )
        return self._entries[name]

    def choices(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._entries)

    def __iter__(self) -> Iterator[tuple[str, T]]:
        """``(name, class)`` pairs, in registration order."""
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.slot!r}, choices={list(self._entries)})"
