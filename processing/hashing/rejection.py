"""Why a media file was not hashed: `skipped` (not allowed: too large, a bomb) or `failed` (broken)."""


class MediaRejected(Exception):
    """Carries the status and reason that end up in the `media` dataset and `chanwatch hash` output."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
