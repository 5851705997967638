"""In-memory state: generated files (the fake CDN) and Midjourney tasks.

Everything lives in one process and one event loop, so plain dicts need no locking. Nothing is
persisted: restarting the simulator is how you reset it.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from studio.simulator.config import Config


@dataclass
class StoredFile:
    data: bytes
    content_type: str
    created: float
    expired: bool = False


class FileStore:
    """Generated media served at /files/<name>, expiring like signed CDN links."""

    def __init__(self, ttl: float, max_files: int = 2000) -> None:
        self.ttl = ttl
        self.max_files = max_files
        self._files: OrderedDict[str, StoredFile] = OrderedDict()

    def add(self, data: bytes, ext: str, content_type: str, *, expired: bool = False) -> str:
        name = f"{secrets.token_hex(12)}.{ext}"
        self._files[name] = StoredFile(data, content_type, time.time(), expired)
        # Oldest files go first; an evicted file answers 404 exactly like an expired link.
        while len(self._files) > self.max_files:
            self._files.popitem(last=False)
        return name

    def lookup(self, name: str) -> tuple[str, StoredFile | None]:
        """Return ("ok" | "missing" | "expired", file)."""
        stored = self._files.get(name)
        if stored is None:
            return "missing", None
        if stored.expired or time.time() - stored.created > self.ttl:
            return "expired", stored
        return "ok", stored


# Progress ladder of an MJ task: index = step. NOT_START, SUBMITTED, IN_PROGRESS 10..90 %, SUCCESS.
STEP_STATUS = ["NOT_START", "SUBMITTED", *(["IN_PROGRESS"] * 9), "SUCCESS"]
STEP_PROGRESS = ["0%", "0%", *(f"{p}%" for p in range(10, 100, 10)), "100%"]
LAST_STEP = len(STEP_STATUS) - 1
FAIL_AT_STEP = 5  # a doomed task shows some progress first ("40%"), as a real failure would


@dataclass
class MjTask:
    id: str
    owner: str
    action: str
    prompt: str
    prompt_en: str
    # What to draw when the task succeeds: grid | single | describe | shorten | swap
    kind: str
    duration: float
    hash: str
    bot_type: str = ""
    state: str = ""
    custom_id: str = ""
    description: str = "Submit success"
    status: str = "NOT_START"
    step: int = 0
    clock_start: float = field(default_factory=time.monotonic)
    submit_time: int = field(default_factory=lambda: int(time.time() * 1000))
    start_time: int = 0
    finish_time: int = 0
    doomed: bool = False
    fail_reason: str = ""
    expire_files: bool = False
    aspect: tuple[int, int] = (1, 1)
    index: int = 1
    parent_id: str = ""
    inputs: list[bytes] = field(default_factory=list)
    link: str = ""
    mask: str = ""
    final_prompt: str = ""
    image_file: str = ""
    image_link: str = ""  # describe by link: the caller's URL, served as-is
    image_files: list[str] = field(default_factory=list)
    preview_file: str = ""
    buttons: list[dict[str, Any]] = field(default_factory=list)
    seed: str = ""


class TaskStore:
    def __init__(self) -> None:
        self._tasks: dict[str, MjTask] = {}
        self._last_id = 0

    def new_id(self) -> str:
        # 16 digits like the proxy's ids: milliseconds + 3 random digits, strictly increasing.
        candidate = int(time.time() * 1000) * 1000 + secrets.randbelow(1000)
        self._last_id = max(candidate, self._last_id + 1)
        return str(self._last_id)

    def add(self, task: MjTask) -> MjTask:
        self._tasks[task.id] = task
        return task

    def get(self, task_id: str, owner: str) -> MjTask | None:
        task = self._tasks.get(str(task_id).strip())
        # Tasks are scoped to the token that made them, like the relay scopes them to a user.
        if task is None or task.owner != owner:
            return None
        return task

    def any_owner(self, task_id: str) -> MjTask | None:
        return self._tasks.get(str(task_id).strip())


@dataclass
class Context:
    config: Config
    files: FileStore
    tasks: TaskStore

    @classmethod
    def create(cls, config: Config) -> Context:
        return cls(config, FileStore(config.file_ttl), TaskStore())
