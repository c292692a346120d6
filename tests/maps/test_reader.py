"""Reading a map's rows: values, line numbers, malformed rows, and reading on from a position."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventbus.errors import ConfigError
from eventbus.maps import Position, Row
from eventbus.maps.reader import RowReader

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def read_all(reader: RowReader, chunk: int = 3) -> list[Row]:
    rows: list[Row] = []
    while True:
        got = reader.read(chunk, NOW)
        if not got:
            reader.close()
            return rows
        rows += got


def test_csv_rows_become_objects_of_their_columns_with_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text('id,note\n1,plain\n2,"two\nlines"\n\n3,"say ""hi"""\n', encoding="utf-8")
    rows = read_all(RowReader([path]))
    assert [(r.line, r.value) for r in rows] == [
        (2, {"id": "1", "note": "plain"}),
        (3, {"id": "2", "note": "two\nlines"}),
        (6, {"id": "3", "note": 'say "hi"'}),
    ]
    assert [r.seq for r in rows] == [0, 1, 2]
    assert all(r.error is None and r.text is None for r in rows)


def test_json_lines_are_parsed_and_keep_their_text(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\r\n"text"\n', encoding="utf-8")
    rows = read_all(RowReader([path]))
    assert [(r.line, r.value, r.text) for r in rows] == [
        (1, {"a": 1}, '{"a": 1}'),
        (3, [1, 2], "[1, 2]"),
        (4, "text", '"text"'),
    ]


def test_malformed_csv_rows_carry_their_line_and_why_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(b'id,name\n1,ann\n2,bob,extra\n3,"c"d\n4,\xff\xfe\n5\n6,eve\n')
    rows = read_all(RowReader([path]))
    assert [(r.line, r.error) for r in rows] == [
        (2, None),
        (3, "3 fields where the header has 2"),
        (4, "not valid CSV: ',' expected after '\"'"),
        (5, "line 5 is not valid utf-8 text"),
        (6, "1 fields where the header has 2"),
        (7, None),
    ]
    assert rows[1].text == "2,bob,extra"
    assert rows[-1].value == {"id": "6", "name": "eve"}


def test_an_unclosed_quote_is_one_malformed_row_from_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text('id,name\n1,ann\n2,"bob\n3,cy\n', encoding="utf-8")
    rows = read_all(RowReader([path]))
    assert [(r.line, r.error) for r in rows] == [(2, None), (3, "not valid CSV: unexpected end of data")]
    assert rows[1].text == '2,"bob\n3,cy'


def test_json_lines_that_no_target_could_deliver_are_malformed(tmp_path: Path) -> None:
    path = tmp_path / "numbers.jsonl"
    path.write_text('{"x": NaN}\n{"x": 1e999}\nnot json\n{"ok": true}\n', encoding="utf-8")
    rows = read_all(RowReader([path]))
    assert [r.line for r in rows if r.error is not None] == [1, 2, 3]
    assert rows[0].error == "not JSON: NaN is not JSON"
    assert rows[3].value == {"ok": True}


def test_a_given_header_reads_every_line_as_a_row(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("1,ann\n2,bob\n", encoding="utf-8")
    rows = read_all(RowReader([path], header=["id", "name"]))
    assert [(r.line, r.value) for r in rows] == [(1, {"id": "1", "name": "ann"}), (2, {"id": "2", "name": "bob"})]


def test_a_byte_order_mark_tsv_and_several_files(tmp_path: Path) -> None:
    first = tmp_path / "a.tsv"
    first.write_bytes("\ufeffid\tname\n1\tann\n".encode())
    second = tmp_path / "b.jsonl"
    second.write_text('{"id": "2"}\n', encoding="utf-8")
    reader = RowReader([first, second])
    rows = read_all(reader)
    assert [(r.file, r.line, r.value) for r in rows] == [(0, 2, {"id": "1", "name": "ann"}), (1, 1, {"id": "2"})]
    assert reader.consumed == reader.size


def test_max_items_stops_reading(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text("id\n" + "".join(f"{i}\n" for i in range(100)), encoding="utf-8")
    rows = read_all(RowReader([path], max_items=7))
    assert [r.value["id"] for r in rows] == [str(i) for i in range(7)]


def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("id,id\n1,2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="names the column 'id' twice"):
        read_all(RowReader([path]))


def test_reading_resumes_at_a_rows_end_with_its_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "resume.csv"
    path.write_text('id,note\n1,a\n2,"b\nb"\n3,c\n4,d\n', encoding="utf-8")
    rows = read_all(RowReader([path]))
    second = rows[1]
    resumed = read_all(RowReader([path], start=Position(0, second.end, second.seq + 1)))
    assert [(r.seq, r.line, r.value["id"]) for r in resumed] == [(2, 5, "3"), (3, 6, "4")]


def test_an_unknown_extension_needs_a_format(tmp_path: Path) -> None:
    path = tmp_path / "rows.txt"
    path.write_text("{}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="set format to 'csv' or 'jsonl'"):
        RowReader([path])
    assert read_all(RowReader([path], format="jsonl"))[0].value == {}


cells = st.text(st.characters(codec="utf-8", exclude_characters="\r\x00"), max_size=8)


@given(st.lists(st.lists(cells, min_size=3, max_size=3), max_size=30), st.integers(1, 7))
def test_any_csv_the_csv_module_writes_reads_back_with_its_lines(rows: list[list[str]], chunk: int) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["a", "b", "c"])
    starts = []
    for row in rows:
        starts.append(buffer.getvalue().count("\n") + 1)
        writer.writerow(row)
    text = buffer.getvalue()
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        path.write_text(text, encoding="utf-8")
        got = read_all(RowReader([path]), chunk)
    # The csv module writes a row of three empty fields as ``,,``; a lone empty field list never occurs.
    assert [(r.line, r.value) for r in got] == [
        (line, dict(zip("abc", row, strict=True))) for line, row in zip(starts, rows, strict=True)
    ]
    assert all(r.error is None for r in got)


@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3), max_size=20))
def test_any_json_lines_read_back(values: list[dict[str, object]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.jsonl"
        path.write_text("".join(json.dumps(v) + "\n" for v in values), encoding="utf-8")
        got = read_all(RowReader([path]))
    assert [r.value for r in got] == values
    assert [r.line for r in got] == list(range(1, len(values) + 1))
