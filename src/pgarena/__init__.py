"""pgarena: a reference FastAPI service on every serious PostgreSQL stack, and the
benchmark harness that compares them."""

__version__ = "0.1.0"
