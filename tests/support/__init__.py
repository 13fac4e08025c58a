"""Helpers shared by Kattle's tests."""
