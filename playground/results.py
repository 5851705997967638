"""A user's last embedding result, kept so the page can show it again and offer it as files.

One file per user under MEDIA_ROOT/playground/, replaced by the next result and deleted with
the account. Nothing in a URL names it: the download views read the signed-in user's own file,
so there is no id another user could try.
"""

import datetime as dt
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class EmbeddingRun:
    """One embeddings call: the texts in order, a vector for each and their similarities."""

    model: str
    texts: list[str]
    vectors: list[list[float]] = field(repr=False)
    similarity: list[list[float]] = field(repr=False)
    prompt_tokens: int
    usage_estimated: bool
    created: dt.datetime
    requested_dimensions: int | None = None

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0

    def as_dict(self) -> dict[str, Any]:
        """Everything, as the JSON download (and the stored file) spell it."""
        return {
            "version": FORMAT_VERSION,
            "model": self.model,
            "created": self.created.isoformat(),
            "dimensions": self.dimensions,
            "requested_dimensions": self.requested_dimensions,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "total_tokens": self.prompt_tokens,
                "estimated": self.usage_estimated,
            },
            "inputs": [
                {"index": index, "text": text, "embedding": vector}
                for index, (text, vector) in enumerate(zip(self.texts, self.vectors, strict=True))
            ],
            "similarity": self.similarity,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EmbeddingRun":
        """The inverse of as_dict; raises KeyError/TypeError/ValueError on a malformed dict."""
        inputs = sorted(data["inputs"], key=lambda entry: int(entry["index"]))
        usage = data.get("usage") or {}
        requested = data.get("requested_dimensions")
        return cls(
            model=str(data["model"]),
            texts=[str(entry["text"]) for entry in inputs],
            vectors=[[float(value) for value in entry["embedding"]] for entry in inputs],
            similarity=[[float(value) for value in row] for row in data["similarity"]],
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            usage_estimated=bool(usage.get("estimated")),
            created=dt.datetime.fromisoformat(str(data["created"])),
            requested_dimensions=int(requested) if requested is not None else None,
        )


def _path(user_id: object) -> Path:
    return Path(settings.MEDIA_ROOT) / "playground" / f"embeddings-{int(str(user_id))}.json"


def save_last(user: AbstractBaseUser, run: EmbeddingRun) -> None:
    """Keep `run` as the user's last result, replacing the one before (atomically)."""
    path = _path(user.pk)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".embeddings-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(run.as_dict(), handle, ensure_ascii=False, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_last(user: AbstractBaseUser) -> EmbeddingRun | None:
    """The user's last result, or None (never made, forgotten, or unreadable)."""
    try:
        data = json.loads(_path(user.pk).read_text(encoding="utf-8"))
        return EmbeddingRun.from_dict(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("Unreadable playground result of user %s: %s", user.pk, error)
        return None


def forget(user_id: object) -> None:
    _path(user_id).unlink(missing_ok=True)


def forget_deleted_user(sender: object, instance: AbstractBaseUser, **kwargs: object) -> None:
    """post_delete of a user: their last result goes too."""
    forget(instance.pk)
