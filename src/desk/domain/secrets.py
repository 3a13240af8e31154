"""How secrets are shown: never. One rule for every message that names a URL."""

from __future__ import annotations

__all__ = ["redact_url"]


def redact_url(url: str | None) -> str:
    """``url`` with its password replaced by ``***`` (database, Redis or any
    ``scheme://user:password@host`` URL, parsable or not); other text unchanged; ``None`` is
    ``""``. Example: ``postgresql+psycopg://me:s3cret@db:5432/x`` ->
    ``postgresql+psycopg://me:***@db:5432/x``."""
    if not url:
        return ""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"
