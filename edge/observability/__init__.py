"""What an on-call engineer reads: metrics, the access log, trace context."""
