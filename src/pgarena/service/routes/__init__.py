"""The HTTP API: one router per endpoint style, plus the routes every stack shares.

`sync_api` and `async_api` declare the same URLs, bodies and status codes, with `async def`
endpoints; the only difference is the store's call: `await run_in_threadpool(db.get_user,
user_id)` (a sync store, on the thread pool) versus `await db.get_user(user_id)` (an async
store, on the event loop).
"""
