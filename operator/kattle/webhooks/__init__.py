"""Calling handler webhooks: the HTTP client, URLs, and what can go wrong."""
