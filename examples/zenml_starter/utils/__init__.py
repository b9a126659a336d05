"""Helpers shared by the steps."""
