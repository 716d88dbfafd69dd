"""Errors the local stack raises: one line naming the cause and the fix."""


class DevstackError(RuntimeError):
    """A server or tool could not be prepared or started; the message says why and what to do."""
