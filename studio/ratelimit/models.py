from django.db import models


class RateCounter(models.Model):
    """Hits of one key in its current window (the database backend; Redis keeps its own).

    The expiry is epoch milliseconds rather than a DateTimeField so the one-statement upsert in
    `backends.DatabaseCounter` compares plain integers the same way on SQLite and PostgreSQL.
    """

    key = models.CharField(max_length=191, primary_key=True)
    hits = models.PositiveIntegerField(default=0)
    expires_ms = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.hits}"
