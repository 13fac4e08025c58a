"""Talking to the Kubernetes API: the client and where each kind lives."""
