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

from typing import Optional, Type

from . import _constants as C

_UNPACK_PREFIX = "Could not unpack artifact '"


class CasError(Exception):
    """Any failure the C library reports."""

    code: Optional[int] = None

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        Exception.__init__(self, message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message

    @property
    def status(self) -> Optional[str]:
        from . import status_name

        return status_name(self.code) if self.code is not None else None

    @property
    def reason(self) -> str:
        m = self.message
        if m.startswith(_UNPACK_PREFIX):
            cut = m.find("': ", len(_UNPACK_PREFIX))
            if cut >= 0:
                return m[cut + 3:]
        return m


class InvalidArgument(CasError, ValueError):
    code = C.CAS_E_ARG


class OutOfMemory(CasError, MemoryError):
    code = C.CAS_E_NOMEM


class StateError(CasError):
    code = C.CAS_E_STATE


class Unsupported(CasError):
    code = C.CAS_E_UNSUPPORTED


class DecodeError(CasError):
    """The blob's bytes do not decode: corrupt, truncated, trailing bytes, or
    not in the format its sidecar names."""


class CorruptBlob(DecodeError):
    code = C.CAS_E_CORRUPT


class TruncatedBlob(DecodeError):
    code = C.CAS_E_TRUNCATED


class TrailingBytes(DecodeError):
    code = C.CAS_E_TRAILING


class LimitExceeded(CasError):
    code = C.CAS_E_LIMIT


class MetadataError(CasError):
    """The sidecar (metadata) cannot be used: not a JSON object, no version,
    or a version this library does not know."""

    code = C.CAS_E_META


class VersionMissing(MetadataError):
    code = C.CAS_E_VERSION_MISSING


class UnknownVersion(MetadataError):
    code = C.CAS_E_VERSION_UNKNOWN


class FormatMismatch(DecodeError):
    code = C.CAS_E_MISMATCH


class HashMismatch(CasError):
    code = C.CAS_E_HASH


class InvalidKey(CasError, ValueError):
    code = C.CAS_E_KEY


class InvalidName(CasError, ValueError):
    code = C.CAS_E_NAME


class NotFound(CasError, KeyError):
    """No such blob, task or artifact. A KeyError, so `except KeyError` works
    (str() is still the plain message, not KeyError's repr)."""

    code = C.CAS_E_NOTFOUND


class CasIOError(CasError, OSError):
    code = C.CAS_E_IO


class MalformedJSON(CasError):
    code = C.CAS_E_JSON


class SizeMismatch(CasError):
    code = C.CAS_E_SIZE


_BY_CODE = {
    c.code: c
    for c in (InvalidArgument, OutOfMemory, StateError, Unsupported, CorruptBlob, TruncatedBlob,
              TrailingBytes, LimitExceeded, MetadataError, VersionMissing, UnknownVersion, FormatMismatch,
              HashMismatch, InvalidKey, InvalidName, NotFound, CasIOError, MalformedJSON, SizeMismatch)
}


def error_class(code: int) -> Type[CasError]:
    """The exception class for a C status code (CasError for unknown ones)."""
    return _BY_CODE.get(code, CasError)
