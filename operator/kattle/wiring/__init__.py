"""The Kopf wiring of the operator."""
