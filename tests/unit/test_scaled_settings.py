"""Settings of the scaled mode, read as a process started with REDIS_URL would read them."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

READ_LAYER = """
import json, django
django.setup()
from channels.layers import get_channel_layer
from channels_redis.utils import create_pool
layer = get_channel_layer()
pool = create_pool(layer.hosts[0])
print(json.dumps({"backend": type(layer).__name__, "blocks": layer.brpop_timeout,
                  "reads": pool.connection_kwargs.get("socket_timeout"),
                  "connections": pool.max_connections,
                  "db": pool.connection_kwargs.get("db")}))
"""


def read_layer() -> dict[str, object]:
    """The channel layer's settings in a process started with REDIS_URL (nothing connects)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_URL"))},
        "DJANGO_DOTENV": "0",
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "REDIS_URL": "redis://127.0.0.1:6379/7",
    }
    result = subprocess.run(
        [sys.executable, "-c", READ_LAYER],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_redis_channel_layer_reads_longer_than_it_blocks():
    # channels-redis waits for a socket's next frame with BZPOPMIN for `brpop_timeout` seconds;
    # a read timeout no longer than that (redis-py's default is 5 s, the same) can cut an idle
    # wait short and close the websocket.
    layer = read_layer()
    assert layer["backend"] == "RedisChannelLayer"
    assert layer["db"] == 7  # the URL still chooses the database
    assert layer["reads"] is not None and layer["reads"] > layer["blocks"] + 5


def test_the_redis_channel_layer_has_connections_for_a_burst_of_replies():
    # Every frame of every running reply is a Redis command; redis-py's pool of 100 ran out
    # when 100 replies ended at once, and their last frames were lost.
    assert read_layer()["connections"] >= 1000
