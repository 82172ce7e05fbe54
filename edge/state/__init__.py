"""State shared by the rate limiter and the idempotency engine: one async store
interface (`StateStore`) with an in-memory and a Redis implementation."""
from .breaker import CircuitBreaker
from .config import BreakerConfig, MemoryConfig, RedisConfig, StateConfig
from .duration import Duration, parse_duration, parse_rate
from .errors import StatusError, StoreUnavailable
from .factory import build_store
from .memory import MemoryStore
from .store import LimitCheck, LimitResult, Reservation, ReservationState, StateStore, StoreStats

__all__ = [
    "BreakerConfig", "CircuitBreaker", "Duration", "LimitCheck", "LimitResult", "MemoryConfig", "MemoryStore",
    "RedisConfig", "Reservation", "ReservationState", "StateConfig", "StateStore", "StatusError",
    "StoreStats", "StoreUnavailable", "build_store", "parse_duration", "parse_rate",
]
