"""Reconcilers: what the operator does when definitions and objects change."""
