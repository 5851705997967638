"""The embedding downloads: JSON holds everything and reads back, CSV has one row per text and
keeps spreadsheet formulas from running."""

import csv
import datetime as dt
import io
import json

from playground import exports
from playground.results import EmbeddingRun

RUN = EmbeddingRun(
    model="text-embedding-3-small",
    texts=["first text", "=1+1", "中文"],
    vectors=[[0.1, -0.2, 0.3], [1e-9, 0.5, -0.75], [0.0, 0.0, 1.0]],
    similarity=[[1.0, 0.5, 0.25], [0.5, 1.0, -0.1], [0.25, -0.1, 1.0]],
    prompt_tokens=7,
    usage_estimated=False,
    created=dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC),
    requested_dimensions=3,
)


def test_json_has_every_text_vector_and_the_matrix():
    data = json.loads(exports.as_json(RUN))
    assert data["model"] == "text-embedding-3-small"
    assert data["dimensions"] == 3 and data["requested_dimensions"] == 3
    assert data["usage"] == {"prompt_tokens": 7, "total_tokens": 7, "estimated": False}
    assert data["inputs"][1] == {"index": 1, "text": "=1+1", "embedding": [1e-9, 0.5, -0.75]}
    assert data["inputs"][2]["text"] == "中文"  # not \u escapes
    assert "中文".encode() in exports.as_json(RUN)
    assert data["similarity"][1][2] == -0.1
    assert data["created"] == "2025-03-04T05:06:07+00:00"


def test_json_reads_back_into_the_same_run():
    assert EmbeddingRun.from_dict(json.loads(exports.as_json(RUN))) == RUN


def test_csv_has_a_header_and_a_row_per_text_with_exact_numbers():
    content = exports.as_csv(RUN)
    assert content.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheet programs then read UTF-8
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0] == ["index", "text", "dim_1", "dim_2", "dim_3"]
    assert rows[1] == ["0", "first text", "0.1", "-0.2", "0.3"]
    assert [float(value) for value in rows[2][2:]] == RUN.vectors[1]
    assert rows[3][:2] == ["2", "中文"]
    assert len(rows) == 4


def test_csv_defuses_cells_that_spreadsheets_would_run():
    rows = list(csv.reader(io.StringIO(exports.as_csv(RUN).decode("utf-8-sig"))))
    assert rows[2][1] == "'=1+1"
    for text in ("+cmd", "-2+3", "@SUM(A1)", "\tx"):
        assert exports.safe_cell(text) == "'" + text
    assert exports.safe_cell("a = b") == "a = b"


def test_csv_quotes_commas_quotes_and_line_breaks():
    run = EmbeddingRun(
        model="m",
        texts=['a, "quoted" text'],
        vectors=[[1.0]],
        similarity=[[1.0]],
        prompt_tokens=1,
        usage_estimated=True,
        created=RUN.created,
    )
    rows = list(csv.reader(io.StringIO(exports.as_csv(run).decode("utf-8-sig"))))
    assert rows[1] == ["0", 'a, "quoted" text', "1.0"]


def test_file_names_carry_the_time_of_the_run():
    assert exports.filename(RUN, "csv") == "embeddings-20250304-050607.csv"
