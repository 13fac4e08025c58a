"""What the operator tells about itself: Prometheus metrics and health endpoints."""
