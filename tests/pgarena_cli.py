"""Kept for the tests that still import `run_pgarena` from here; it lives in `helpers`."""

from helpers import run_pgarena

__all__ = ["run_pgarena"]
