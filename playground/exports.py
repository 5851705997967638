"""An embedding result as files to download: JSON (everything) and CSV (one row per text)."""

import csv
import io
import json

from playground.results import EmbeddingRun

# A cell starting with one of these is a formula to spreadsheet programs (CSV injection): a
# text such as "=HYPERLINK(...)" must stay text when the file is opened in Excel.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_json(run: EmbeddingRun) -> bytes:
    """Model, usage, each text with its full vector, and the similarity matrix."""
    return json.dumps(run.as_dict(), ensure_ascii=False, indent=1).encode("utf-8")


def as_csv(run: EmbeddingRun) -> bytes:
    """One row per text: index, text, then one column per dimension (dim_1 … dim_n).

    UTF-8 with a byte-order mark, so that spreadsheet programs read Chinese text correctly.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["index", "text", *(f"dim_{n}" for n in range(1, run.dimensions + 1))])
    for index, (text, vector) in enumerate(zip(run.texts, run.vectors, strict=True)):
        writer.writerow([index, safe_cell(text), *(repr(value) for value in vector)])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def safe_cell(text: str) -> str:
    """`text` as a spreadsheet shows it literally: a leading apostrophe defuses a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def filename(run: EmbeddingRun, extension: str) -> str:
    return f"embeddings-{run.created:%Y%m%d-%H%M%S}.{extension}"
