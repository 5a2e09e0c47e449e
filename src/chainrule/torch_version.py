"""torch.torch_version: ``TorchVersion``, the ``str`` that ``torch.__version__`` is, which also
compares with version strings, tuples and ``Version`` objects by PEP 440 order.

Libraries gate code on ``torch.__version__ >= (2, 1)`` or ``>= "2.1"``; on a plain ``str`` the first
is a TypeError and the second compares characters ("0.10" < "0.9"). ``Version`` here is a small
reading of PEP 440 (epoch, release, pre-, post- and dev-releases, local labels) with the order the
``packaging`` library gives, so chainrule needs no ``packaging`` at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .version import __version__ as _own_version

__all__ = ["TorchVersion"]

_PATTERN = re.compile(
    r"""^\s*v?
    (?:(?P<epoch>\d+)!)?
    (?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre_label>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<pre_number>\d+)?)?
    (?:-(?P<post_bare>\d+)|[-_.]?(?P<post_label>post|rev|r)[-_.]?(?P<post_number>\d+)?)?
    (?:[-_.]?(?P<dev_label>dev)[-_.]?(?P<dev_number>\d+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_PRE_SPELLINGS = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "c": "rc", "rc": "rc", "pre": "rc", "preview": "rc"}
# sort keys: a missing part sorts below (_BELOW) or above (_ABOVE) every present one
_BELOW, _ABOVE = (0,), (2,)


class InvalidVersion(ValueError):
    """A string that is not a PEP 440 version (packaging's exception of the same name)."""


_ORDERING = ("__lt__", "__le__", "__eq__", "__ge__", "__gt__")


def _compared_by(*names: str):
    """A class decorator: each rich comparison in ``names`` answered by ``self._compare(other, name)``
    (set after the class is made, so an explicit ``__hash__`` stays)."""
    def decorate(cls):
        for name in names:
            def compare(self, other: Any, _name: str = name):
                return self._compare(other, _name)

            compare.__name__ = compare.__qualname__ = name
            setattr(cls, name, compare)
        return cls

    return decorate


@_compared_by(*_ORDERING, "__ne__")
class Version:
    """A PEP 440 version: parsed once, compared by packaging's order (1.0.dev0 < 1.0a1 < 1.0 < 1.0.post1)."""

    def __init__(self, version: str) -> None:
        match = _PATTERN.match(version)
        if match is None:
            raise InvalidVersion(f"Invalid version: {version!r}")
        parts = match.groupdict()
        self.epoch = int(parts["epoch"] or 0)
        self.release = tuple(int(number) for number in parts["release"].split("."))
        self.pre = None if parts["pre_label"] is None else (
            _PRE_SPELLINGS[parts["pre_label"].lower()], int(parts["pre_number"] or 0))
        if parts["post_bare"] is not None:
            self.post = int(parts["post_bare"])
        else:
            self.post = None if parts["post_label"] is None else int(parts["post_number"] or 0)
        self.dev = None if parts["dev_label"] is None else int(parts["dev_number"] or 0)
        self.local = None if parts["local"] is None else ".".join(re.split(r"[-_.]", parts["local"].lower()))
        self._key = self._sort_key()

    def _sort_key(self) -> tuple:
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:  # 1.0 == 1.0.0
            release.pop()
        if self.pre is None and self.post is None and self.dev is not None:
            pre = _BELOW  # 1.0.dev0 comes before 1.0a0
        else:
            pre = _ABOVE if self.pre is None else (1, *self.pre)
        post = _BELOW if self.post is None else (1, self.post)
        dev = _ABOVE if self.dev is None else (1, self.dev)
        # a local label sorts above none; its numeric parts above its alphabetic ones
        local = _BELOW if self.local is None else (1, tuple(
            (1, int(part), "") if part.isdigit() else (0, 0, part) for part in self.local.split(".")))
        return self.epoch, tuple(release), pre, post, dev, local

    @property
    def major(self) -> int:
        return self.release[0]

    @property
    def minor(self) -> int:
        return self.release[1] if len(self.release) > 1 else 0

    @property
    def micro(self) -> int:
        return self.release[2] if len(self.release) > 2 else 0

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None or self.dev is not None

    @property
    def is_postrelease(self) -> bool:
        return self.post is not None

    @property
    def is_devrelease(self) -> bool:
        return self.dev is not None

    @property
    def base_version(self) -> str:
        epoch = f"{self.epoch}!" if self.epoch else ""
        return epoch + ".".join(str(number) for number in self.release)

    @property
    def public(self) -> str:
        return str(self).split("+", 1)[0]

    def __str__(self) -> str:
        text = self.base_version
        if self.pre is not None:
            text += f"{self.pre[0]}{self.pre[1]}"
        if self.post is not None:
            text += f".post{self.post}"
        if self.dev is not None:
            text += f".dev{self.dev}"
        if self.local is not None:
            text += f"+{self.local}"
        return text

    def __repr__(self) -> str:
        return f"<Version('{self}')>"

    def __hash__(self) -> int:
        return hash(self._key)

    def _compare(self, other: Any, method: str):
        if not isinstance(other, Version):
            return NotImplemented
        return getattr(self._key, method)(other._key)


@_compared_by(*_ORDERING)  # != stays str's, as torch's TorchVersion leaves it
class TorchVersion(str):
    """torch.torch_version.TorchVersion: a ``str`` that compares with a ``Version``, a version string
    or a tuple ``(major, minor, ...)`` by version order; against something that is not a version
    (``"parrot"``) it compares as the string it is. Its hash is the string's."""

    __slots__ = ()

    def _as_version(self, other: Any) -> Version:
        if isinstance(other, Version):
            return other
        if isinstance(other, str):
            return Version(other)
        if isinstance(other, Iterable):
            return Version(".".join(str(item) for item in other))  # (2, 1) -> "2.1"
        raise InvalidVersion(other)

    def _compare(self, other: Any, method: str):
        try:
            return getattr(Version(self), method)(self._as_version(other))
        except InvalidVersion:
            return getattr(str, method)(self, other)

    __hash__ = str.__hash__


__version__ = TorchVersion(_own_version)
