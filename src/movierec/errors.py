"""Project-wide exceptions.

Every failure a user can cause or meet (bad input, a bad archive, an unreachable database)
raises a subclass of :class:`MovierecError` whose message is one clear line; the CLI prints
that line and exits non-zero, the API turns it into a JSON error.
"""


class MovierecError(Exception):
    """Base class of every error movierec raises on purpose."""


class ConfigError(MovierecError):
    """Settings that cannot work (an unknown dataset name, an unusable URL)."""


class DataSourceError(MovierecError):
    """A data source that cannot be used: missing, unreachable, truncated or corrupt."""


class ChecksumError(DataSourceError):
    """A file whose checksum differs from the expected one (the file is removed)."""


class ParseError(DataSourceError):
    """Input rows that cannot be parsed (in strict mode, or when nothing valid remains)."""


class StoreError(MovierecError):
    """The ratings store cannot be reached or refused an operation."""


def first_line(exc: BaseException, limit: int = 500) -> str:
    """An exception's first line, for a one-line message or a tag (a JVM or driver error's
    message without its stack trace); the class name when it has no text."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
