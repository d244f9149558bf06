"""Errors a user can cause. Each renders as one clear message (no traceback).

The CLI catches :class:`RepmixError` and prints :meth:`RepmixError.render`,
then exits with :attr:`RepmixError.exit_code` (2 for user errors).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


def did_you_mean(found: str, allowed: Iterable[str]) -> str | None:
    """Return the closest allowed value to ``found``, or ``None``."""
    matches = difflib.get_close_matches(str(found), [str(a) for a in allowed], n=1, cutoff=0.6)
    return matches[0] if matches else None


class RepmixError(Exception):
    """Base class of every error repmix reports to a user."""

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The message as printed by the CLI."""
        text = f"error: {self.message}"
        if self.hint:
            text += "\n  " + self.hint.replace("\n", "\n  ")
        return text

    def __str__(self) -> str:
        return self.render()


class ConfigError(RepmixError):
    """A problem in a YAML config, located by dotted path and line."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        file: str | None = None,
        line: int | None = None,
        found: object = None,
        allowed: Sequence[str] | None = None,
        suggestion: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.file = file
        self.line = line
        self.found = found
        self.allowed = list(allowed) if allowed is not None else None
        if suggestion is None and allowed and found is not None:
            suggestion = did_you_mean(str(found), allowed)
        self.suggestion = suggestion
        super().__init__(message, hint=hint)

    @property
    def location(self) -> str:
        """``file:line: path`` as far as known."""
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        elif self.line:
            parts.append(f"line {self.line}")
        if self.path:
            parts.append(self.path)
        return ": ".join(parts)

    def render(self) -> str:
        loc = self.location
        head = f"error: {loc}: {self.message}" if loc else f"error: {self.message}"
        lines = [head]
        if self.found is not None:
            lines.append(f"  found: {self.found!r}")
        if self.allowed:
            shown = ", ".join(self.allowed[:30]) + (", ..." if len(self.allowed) > 30 else "")
            lines.append(f"  allowed: {shown}")
        if self.suggestion:
            lines.append(f"  did you mean {self.suggestion!r}?")
        if self.hint:
            lines.append("  " + self.hint.replace("\n", "\n  "))
        return "\n".join(lines)


class PipelineError(ConfigError):
    """A pipeline that cannot work: granularities or per-layer states missing, dims mismatched."""


class PluginError(RepmixError):
    """A plugin is missing, broken, disabled or incompatible with this repmix."""


class ArtifactError(RepmixError):
    """A saved model or run directory is missing, incomplete, tampered or unsafe."""


class InputError(RepmixError):
    """A user-provided input file or value is missing, empty or malformed."""
