"""Exceptions: one class per C status code, all under CasError.

str(e) is the C library's message word for word (Metaflow's own wording where
Metaflow has one, e.g. "Could not unpack artifact 'F/data/ab/ab..': Compressed
file ended before the end-of-stream marker was reached"). e.code is the C
status (a negative int, see cas_codecs.h), e.status its name ("CAS_E_TRUNCATED"),
e.reason the part after "Could not unpack artifact '<name>': " when the message
has that form (what Metaflow's DataException puts after the colon), else the
whole message.
"""

__all__ = [
    "CasError", "InvalidArgument", "OutOfMemory", "StateError", "Unsupported", "DecodeError",
    "CorruptBlob", "TruncatedBlob", "TrailingBytes", "FormatMismatch", "LimitExceeded",
    "MetadataError", "VersionMissing", "UnknownVersion", "HashMismatch", "InvalidKey", "InvalidName",
    "NotFound", "CasIOError", "MalformedJSON", "SizeMismatch", "error_class",
]

_UNPACK_PREFIX = "Could not unpack artifact '"


class CasError(Exception):
    """Any failure the C library reports."""

    code = None

    def __init__(self, message, code=None):
        Exception.__init__(self, message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self):
        return self.message

    @property
    def status(self):
        from . import status_name

        return status_name(self.code) if self.code is not None else None

    @property
    def reason(self):
        m = self.message
        if m.startswith(_UNPACK_PREFIX):
            cut = m.find("': ", len(_UNPACK_PREFIX))
            if cut >= 0:
                return m[cut + 3:]
        return m


class InvalidArgument(CasError, ValueError):
    code = -2


class OutOfMemory(CasError, MemoryError):
    code = -1


class StateError(CasError):
    code = -3


class Unsupported(CasError):
    code = -4


class DecodeError(CasError):
    """The blob's bytes do not decode: corrupt, truncated, trailing bytes, or
    not in the format its sidecar names."""


class CorruptBlob(DecodeError):
    code = -5


class TruncatedBlob(DecodeError):
    code = -6


class TrailingBytes(DecodeError):
    code = -7


class LimitExceeded(CasError):
    code = -8


class MetadataError(CasError):
    """The sidecar (metadata) cannot be used: not a JSON object, no version,
    or a version this library does not know."""

    code = -9


class VersionMissing(MetadataError):
    code = -10


class UnknownVersion(MetadataError):
    code = -11


class FormatMismatch(DecodeError):
    code = -12


class HashMismatch(CasError):
    code = -13


class InvalidKey(CasError, ValueError):
    code = -14


class InvalidName(CasError, ValueError):
    code = -15


class NotFound(CasError, KeyError):
    """No such blob, task or artifact. A KeyError, so `except KeyError` works
    (str() is still the plain message, not KeyError's repr)."""

    code = -16


class CasIOError(CasError, OSError):
    code = -17


class MalformedJSON(CasError):
    code = -18


class SizeMismatch(CasError):
    code = -19


_BY_CODE = {
    c.code: c
    for c in (InvalidArgument, OutOfMemory, StateError, Unsupported, CorruptBlob, TruncatedBlob,
              TrailingBytes, LimitExceeded, MetadataError, VersionMissing, UnknownVersion, FormatMismatch,
              HashMismatch, InvalidKey, InvalidName, NotFound, CasIOError, MalformedJSON, SizeMismatch)
}


def error_class(code):
    """The exception class for a C status code (CasError for unknown ones)."""
    return _BY_CODE.get(code, CasError)
