"""Idempotency keys: replay a finished request's response instead of running it twice."""
from .config import IdempotencyConfig, IdempotencyRoute
from .engine import (METADATA_KEY, OMITTED_HEADER, REPLAYED_HEADER, Begin, BeginState, IdempotencyEngine, Reserving,
                     RouteRule, StoredResponse, decode_record, encode_record)
from .errors import (IdempotencyError, IdempotencyInFlight, IdempotencyKeyInvalid, IdempotencyKeyMismatch,
                     IdempotencyKeyRequired, IdempotencyUnavailable)
from .fingerprint import backend_key, fingerprint, parse_key

__all__ = [
    "METADATA_KEY", "OMITTED_HEADER", "REPLAYED_HEADER", "Begin", "BeginState", "IdempotencyConfig",
    "IdempotencyEngine", "IdempotencyError", "IdempotencyInFlight", "IdempotencyKeyInvalid",
    "IdempotencyKeyMismatch", "IdempotencyKeyRequired", "IdempotencyRoute", "IdempotencyUnavailable", "Reserving",
    "RouteRule", "StoredResponse", "backend_key", "decode_record", "encode_record", "fingerprint", "parse_key",
]
