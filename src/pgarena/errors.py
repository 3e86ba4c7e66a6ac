"""Errors a user can cause and fix: the CLI prints them as one line and exits with 2."""


class UserError(Exception):
    """A mistake in how pgarena was called or configured (bad URL, port in use, ...).

    The message is shown to the user as is, so it must be short, plain and free of
    secrets (pass URLs through `pgarena.database.urls.redact` first).
    """
