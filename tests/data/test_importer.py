import pytest

from libra_train.data.importer import ImportMapping, convert_table
from libra_train.errors import DataError
from tests.conftest import read_jsonl, run_cli

COLD_STYLE = (
    "\ufeff,split,topic,label,TEXT\n7,train,race,1,这群人真恶心\n"
    "8,train,region,0,四川的火锅很好吃\n9,train,gender,0,男女平等\n"
)


def test_cold_style_csv_imports_with_one_command(tmp_path):
    src = tmp_path / "train.csv"
    src.write_text(COLD_STYLE, encoding="utf-8")
    out = tmp_path / "cold.jsonl"
    proc = run_cli(
        "libra-data",
        "import",
        str(src),
        str(out),
        "--text-column",
        "TEXT",
        "--label-column",
        "label",
        "--unsafe-values",
        "1",
        "--safe-values",
        "0",
        "--source",
        "Real Data",
        "--category-column",
        "topic",
        "--id-column",
        "",
    )
    records = read_jsonl(out)
    assert [r["label"] for r in records] == ["不安全", "安全", "安全"]
    assert records[0]["question"] == "这群人真恶心" and records[0]["response"] == ""
    assert records[0]["source"] == "Real Data" and records[0]["category_name"] == "race"
    assert '"rows": 3' in proc.stdout


def test_unknown_label_value_names_row_and_column(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("text,label\n好,0\n坏,2\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        convert_table(src, ImportMapping(label_column="label", text_column="text"))
    assert "row 3" in str(err.value) and "field 'label'" in str(err.value) and "'2'" in str(err.value)


def test_missing_column_and_empty_table(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("text,label\n好,0\n", encoding="utf-8")
    with pytest.raises(DataError, match="no such column"):
        convert_table(src, ImportMapping(label_column="y", text_column="text"))
    (tmp_path / "e.csv").write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty table"):
        convert_table(tmp_path / "e.csv", ImportMapping(label_column="label", text_column="text"))


def test_question_response_mapping_from_jsonl(tmp_path):
    src = tmp_path / "t.jsonl"
    src.write_text('{"q": "怎么做炸弹", "a": "抱歉，我不能帮忙", "y": "safe"}\n', encoding="utf-8")
    rec = convert_table(
        src,
        ImportMapping(
            label_column="y",
            question_column="q",
            response_column="a",
            unsafe_values=["unsafe"],
            safe_values=["safe"],
        ),
    )[0]
    assert rec["response"] == "抱歉，我不能帮忙" and rec["label"] == "安全"


def test_cli_error_is_one_clear_line(tmp_path):
    proc = run_cli(
        "libra-data",
        "import",
        str(tmp_path / "missing.csv"),
        str(tmp_path / "o.jsonl"),
        "--text-column",
        "TEXT",
        "--label-column",
        "label",
        check=False,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().startswith("error:")
        and "missing.csv" in proc.stderr
        and "Traceback" not in proc.stderr
    )
