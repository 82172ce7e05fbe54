"""State shared by the rate limiter and the idempotency engine: one async store
interface (`StateStore`) with an in-memory and a Redis implementation."""
from .breaker import CircuitBreaker
from .config import BreakerConfig, MemoryConfig, RedisConfig, StateConfig
from .duration import Duration, parse_duration, parse_rate
from .errors import StatusError, StoreUnavailable
from .factory import build_store
from .memory import MemoryStore
from .store import (Admission, LimitCheck, LimitResult, Reservation, ReservationState, ReserveRequest, StateStore,
                    StoreStats, give_back)

__all__ = [
    "Admission", "BreakerConfig", "CircuitBreaker", "Duration", "LimitCheck", "LimitResult", "MemoryConfig", "MemoryStore",
    "RedisConfig", "Reservation", "ReservationState", "ReserveRequest", "StateConfig", "StateStore", "StatusError",
    "StoreStats", "StoreUnavailable", "build_store", "give_back", "parse_duration", "parse_rate",
]
