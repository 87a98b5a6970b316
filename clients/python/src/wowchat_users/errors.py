"""The google.rpc error details of a refused call, decoded.

The service answers a refusal with a gRPC status whose
`grpc-status-details-bin` trailer holds a `google.rpc.Status`: the same code
and message, and details packed in `Any`: always a `google.rpc.ErrorInfo`
(domain "users.wowchat.dev", a stable UPPER_SNAKE `reason` to branch on),
for invalid input a `google.rpc.BadRequest` (the field violations), for a
rate limit a `google.rpc.RetryInfo` (when to try again)::

    try:
        stub.InviteUser(request, metadata=bearer(token))
    except grpc.RpcError as err:
        if reason(err) == "USER_ALREADY_MEMBER":
            ...
        for violation in field_violations(err):
            print(violation.field, violation.description)

Every function takes the exception as raised (a `grpc.RpcError` from a
blocking or future call, or a `grpc.aio.AioRpcError`) and returns None or
an empty list when the detail is absent (a status from a proxy, say).
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import message
from google.rpc import error_details_pb2, status_pb2

ErrorInfo = error_details_pb2.ErrorInfo
BadRequest = error_details_pb2.BadRequest
RetryInfo = error_details_pb2.RetryInfo

DETAILS_KEY = "grpc-status-details-bin"
DOMAIN = "users.wowchat.dev"

# Every detail type google/rpc/error_details.proto defines, by full name.
_KNOWN: dict[str, type[message.Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        error_details_pb2.ErrorInfo,
        error_details_pb2.RetryInfo,
        error_details_pb2.DebugInfo,
        error_details_pb2.QuotaFailure,
        error_details_pb2.PreconditionFailure,
        error_details_pb2.BadRequest,
        error_details_pb2.RequestInfo,
        error_details_pb2.ResourceInfo,
        error_details_pb2.Help,
        error_details_pb2.LocalizedMessage,
    )
}

M = TypeVar("M", bound=message.Message)


def status(err: BaseException) -> status_pb2.Status | None:
    """The `google.rpc.Status` of the error's trailer, or None."""
    trailing_metadata = getattr(err, "trailing_metadata", None)
    if not callable(trailing_metadata):
        return None
    for key, value in trailing_metadata() or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            decoded = status_pb2.Status()
            decoded.ParseFromString(value)
            return decoded
    return None


def details(err: BaseException) -> list[message.Message]:
    """Every detail, each as its google.rpc message (an `Any` if unknown)."""
    decoded = status(err)
    if decoded is None:
        return []
    out: list[message.Message] = []
    for packed in decoded.details:
        cls = _KNOWN.get(packed.TypeName())
        if cls is None:
            out.append(packed)
            continue
        detail = cls()
        packed.Unpack(detail)
        out.append(detail)
    return out


def _first(err: BaseException, cls: type[M]) -> M | None:
    decoded = status(err)
    if decoded is None:
        return None
    for packed in decoded.details:
        if packed.TypeName() == cls.DESCRIPTOR.full_name:
            detail = cls()
            packed.Unpack(detail)
            return detail
    return None


def error_info(err: BaseException) -> ErrorInfo | None:
    """The `google.rpc.ErrorInfo`: `reason`, `domain`, `metadata`."""
    return _first(err, ErrorInfo)


def reason(err: BaseException) -> str | None:
    """The ErrorInfo's reason, e.g. "USER_ALREADY_MEMBER" (docs/api.md lists them)."""
    info = error_info(err)
    return info.reason if info is not None else None


def bad_request(err: BaseException) -> BadRequest | None:
    """The `google.rpc.BadRequest` of an INVALID_ARGUMENT refusal."""
    return _first(err, BadRequest)


def field_violations(err: BaseException) -> list[BadRequest.FieldViolation]:
    """The BadRequest's field violations (`field`, `description`), or []."""
    request = bad_request(err)
    return list(request.field_violations) if request is not None else []


def retry_info(err: BaseException) -> RetryInfo | None:
    """The `google.rpc.RetryInfo` of a rate-limited call: `retry_delay`."""
    return _first(err, RetryInfo)


__all__ = [
    "BadRequest",
    "DETAILS_KEY",
    "DOMAIN",
    "ErrorInfo",
    "RetryInfo",
    "bad_request",
    "details",
    "error_info",
    "field_violations",
    "reason",
    "retry_info",
    "status",
]
