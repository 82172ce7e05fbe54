"""CORS for browser clients on other origins: config, origin matching, preflights and response headers."""
from .config import DEFAULT_ALLOW_HEADERS, DEFAULT_ALLOW_METHODS, DEFAULT_EXPOSE_HEADERS, CorsConfig, CorsRoute
from .origins import AllowedOrigins, parse_origin
from .policy import Cors, CorsPolicy, build_cors

__all__ = [
    "DEFAULT_ALLOW_HEADERS", "DEFAULT_ALLOW_METHODS", "DEFAULT_EXPOSE_HEADERS", "AllowedOrigins", "Cors",
    "CorsConfig", "CorsPolicy", "CorsRoute", "build_cors", "parse_origin",
]
