"""Re-export of the error types; they live in `processing.errors` so every layer can raise them."""

from processing.errors import BadInputError, ChanwatchError, RunFailedError

__all__ = ["BadInputError", "ChanwatchError", "RunFailedError"]
