"""A local fake of the AI relay (one-api / new-api style) that answers over real HTTP.

Used by ``make demo`` and by the tests. Plain ASGI 3, no Django, no shared code with
``studio.upstream``. Start it with ``python -m studio.simulator --port 8090`` or
``daphne -b 127.0.0.1 -p 8090 studio.simulator.app:application``.

Environment: SIMULATOR_SPEED (time multiplier, default 1), SIMULATOR_TOKENS_PER_SECOND (40),
SIMULATOR_FILE_TTL (3600 s), SIMULATOR_KEYS (extra valid tokens, comma separated),
SIMULATOR_PUBLIC_URL (base for generated links), SIMULATOR_MJ_PICK_ACTIONS (accept describe /
shorten pick buttons). Valid tokens: ``sk-sim-…``. Special prompt markers: see ``specials.py``.
"""
