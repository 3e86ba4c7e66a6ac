"""The HTTP API: one router per endpoint style, plus the routes every stack shares.

`sync_api` and `async_api` declare the same URLs, bodies and status codes; the only
difference is `def` (run on the thread pool) versus `async def` (run on the event loop).
"""
