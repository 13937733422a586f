"""Every table format reads to the same columns of strings (None where empty)."""
from __future__ import annotations

import gzip

import pytest

from mmgraph.data.tables import read_table, table_format
from mmgraph.errors import InputError

EXPECTED = {"id": ["1", "2", "3"], "name": ["one", None, "three, 3"], "score": ["0.5", "1.5", None]}


def _check(table):
    assert table.columns == EXPECTED and table.num_rows == 3


def test_csv_with_header_quotes_and_blank_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,name,score\n1,one,0.5\n\n2,,1.5\n3,"three, 3",\n', encoding="utf-8")
    _check(read_table(path))


def test_csv_without_header_uses_given_names(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('1,one,0.5\n2, ,1.5\n3,"three, 3",\n', encoding="utf-8")
    _check(read_table(path, header=["id", "name", "score"]))


def test_tsv_with_and_without_header(tmp_path):
    (tmp_path / "a.tsv").write_text("id\tname\tscore\n1\tone\t0.5\n2\t\t1.5\n3\tthree, 3\t\n",
                                    encoding="utf-8")
    _check(read_table(tmp_path / "a.tsv"))
    (tmp_path / "b.tsv").write_text("1\tone\t0.5\n2\t\t1.5\n3\tthree, 3\t\n", encoding="utf-8")
    _check(read_table(tmp_path / "b.tsv", header=["id", "name", "score"]))


def test_tsv_keeps_stray_quotes(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text('id\ttext\nx\tsay "hi\ny\tok\n', encoding="utf-8")
    assert read_table(path).columns["text"] == ['say "hi', "ok"]


def test_format_override_for_txt(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("id\tname\tscore\n1\tone\t0.5\n2\t\t1.5\n3\tthree, 3\t\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot tell the table format"):
        read_table(path)
    _check(read_table(path, format="tsv"))
    assert table_format(tmp_path / "x.csv.gz") == "csv"


def test_gzipped_csv(tmp_path):
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write('id,name,score\n1,one,0.5\n2,,1.5\n3,"three, 3",\n')
    _check(read_table(path))


def test_jsonl_numbers_nulls_nan_and_lists(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"id": 1, "name": "one", "score": 0.5}\n\n'
        '{"id": 2, "name": "", "score": 1.5, "vec": [1, 2.5]}\n'
        '{"id": 3, "name": "three, 3", "score": NaN, "flag": true}\n',
        encoding="utf-8",
    )
    table = read_table(path)
    assert {k: table.columns[k] for k in EXPECTED} == EXPECTED
    assert table.columns["vec"] == [None, "1 2.5", None]  # a key first seen late is missing before
    assert table.columns["flag"] == [None, None, "true"]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    columns = {"id": [1, 2, 3], "name": ["one", None, "three, 3"], "score": [0.5, 1.5, float("nan")]}
    pq.write_table(pa.table(columns), path)
    _check(read_table(path))


def test_missing_column_names_table_and_suggests(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,name\n1,a\n", encoding="utf-8")
    pattern = r"t\.csv: no column 'nme' \(columns: id, name\); did you mean 'name'\?"
    with pytest.raises(InputError, match=pattern):
        read_table(path).column("nme")


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("short.csv", "id,name\n1,a\n2\n", r"short\.csv: row 2 has 1 fields, expected 2"),
        ("dup.csv", "id,id\n1,2\n", r"dup\.csv: header names column 'id' twice"),
        ("noname.csv", "id,\n1,2\n", r"noname\.csv: header column 2 has no name"),
        ("empty.csv", "", r"empty\.csv: empty table"),
        ("bad.jsonl", '{"id": 1}\n{"id": \n', r"bad\.jsonl: row 2: invalid JSON"),
        ("list.jsonl", "[1, 2]\n", r"list\.jsonl: row 1: expected a JSON object"),
        ("broken.parquet", "not parquet", r"broken\.parquet: cannot read parquet table"),
        ("latin.csv", b"id,name\n1,caf\xe9\n", r"latin\.csv: not UTF-8 text"),
    ],
)
def test_bad_tables_name_the_file(tmp_path, name, content, pattern):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError, match=pattern):
        read_table(path)


def test_missing_table_and_header_for_jsonl(tmp_path):
    with pytest.raises(InputError, match=r"absent\.csv: table not found"):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "t.jsonl").write_text('{"id": 1}\n', encoding="utf-8")
    with pytest.raises(InputError, match="header: only applies to csv/tsv"):
        read_table(tmp_path / "t.jsonl", header=["id"])
