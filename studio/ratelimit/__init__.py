"""Rate limits shared by chat sends, job submissions and sign-ins.

One counter per key in a window that starts at the key's first hit: on Redis when REDIS_URL is
set (so every web process shares it), in the database otherwise. Callers use
`studio.ratelimit.limiter` (this package stays import-light: settings.py may import from it).
"""
