"""How much the incremental SSE parser costs over the least work that reading a stream needs.

Baseline (same run, same data): split the whole body on blank lines and json.loads each event,
which is the floor for any parser. Ours is fed the body in network-sized chunks (and, as a worst
case, in 7-byte chunks that split lines and UTF-8 characters). Prints tokens/s and the ratio
baseline/ours (1.0 = free; the chat issue needs ~25,000 tokens/s per process, so the parser
must stay far above that).

    python bench/sse_parser.py [--smoke]
"""

import asyncio
import json
import sys
import time

from studio.upstream.sse import SSEParser, iter_json_events


def make_stream(tokens: int) -> bytes:
    events = []
    for index in range(tokens):
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"content": f"词{index} "}, "finish_reason": None}],
        }
        events.append(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n")
        if index % 200 == 0:
            events.append(": ping\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


def baseline(body: bytes) -> int:
    count = 0
    for block in body.decode().split("\n\n"):
        if block.startswith("data: {"):
            json.loads(block[6:])
            count += 1
    return count


def parser_only(body: bytes, chunk_size: int) -> int:
    parser = SSEParser()
    count = 0
    for start in range(0, len(body), chunk_size):
        count += len(parser.feed(body[start : start + chunk_size]))
    return count + len(parser.close())


async def full_pipeline(body: bytes, chunk_size: int) -> int:
    async def chunks():
        for start in range(0, len(body), chunk_size):
            yield body[start : start + chunk_size]

    return sum([1 async for _ in iter_json_events(chunks())])


def timed(function, *args) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    tokens = 2_000 if "--smoke" in sys.argv else 50_000
    body = make_stream(tokens)
    base = timed(baseline, body)
    rows = [
        ("baseline split+json.loads", base),
        ("SSEParser alone (no JSON), 4 KiB", timed(parser_only, body, 4096)),
        ("SSEParser alone (no JSON), 7 B", timed(parser_only, body, 7)),
        (
            "iter_json_events (parse+JSON), 4 KiB",
            timed(lambda: asyncio.run(full_pipeline(body, 4096))),
        ),
    ]
    print(f"{tokens} tokens, {len(body) / 1e6:.1f} MB of SSE")
    for name, seconds in rows:
        print(f"  {name:34s} {tokens / seconds:>12,.0f} tokens/s   ratio {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
