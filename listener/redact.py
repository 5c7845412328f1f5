"""The one place secrets are scrubbed from text that may be shown: errors, logs, status, check.

Monday's error pages, a proxy's, or PostgreSQL's connection errors can echo what they were
sent; whatever comes from outside passes through `redact` with every secret the configuration
holds (`Settings.secrets`) before anyone sees it.
"""

from __future__ import annotations

from collections.abc import Iterable

PLACEHOLDER = "[redacted]"


def redact(text: str, secrets: Iterable[str]) -> str:
    """The text with every (non-empty) secret in it replaced by PLACEHOLDER."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, PLACEHOLDER)
    return text
