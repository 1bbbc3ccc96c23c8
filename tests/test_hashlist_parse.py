"""Hash-list parsing: every format the issue names, validation with FILE:LINE, folding and counting."""

from __future__ import annotations

import pytest

from processing.errors import BadInputError
from processing.hashlists.parse import parse_hash_list

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_B = "98736629670cc19fc9f23862f66cce1f599e32c78e236c78619d202e9e66c157"
MD5 = "0123456789abcdef0123456789abcdef"
SHA256 = "ab" * 32


def parse(text: str, name: str = "list.txt", **kw):
    return parse_hash_list(text.encode(), name, category="cat", **kw)


def hashes(parsed, signal: str) -> list[str]:
    return parsed.signals[signal].table["hash"].to_pylist()


def test_pytx_local_file_with_aliases_comments_and_unsupported_types() -> None:
    parsed = parse(f"# exported by threatexchange\n\npdq {PDQ_A.upper()}\nvideo_md5 {MD5}\n"
                   f"photodna AAAAAAAA\nurl https://example.org\npdq {PDQ_A}\n")
    assert parsed.format == "pytx"
    assert hashes(parsed, "pdq") == [PDQ_A]  # lowercased, and the second copy folded
    assert hashes(parsed, "md5") == [MD5]  # video_md5 is an MD5: it matches any media file
    assert parsed.duplicates_folded == 1
    assert dict(parsed.ignored) == {"photodna": 1, "url": 1}
    assert parsed.signals["pdq"].table["line"].to_pylist() == [3]


def test_bare_hashes_need_a_signal_when_ambiguous() -> None:
    with pytest.raises(BadInputError, match=r"list.txt:1: .*64-hex.*--signal"):
        parse(f"{PDQ_A}\n{PDQ_B}\n")
    assert hashes(parse(f"{PDQ_A}\n{PDQ_B}\n", signal="pdq"), "pdq") == [PDQ_A, PDQ_B]
    assert hashes(parse(f"{SHA256}\n", signal="sha256"), "sha256") == [SHA256]


def test_plain_md5_list_is_detected() -> None:
    parsed = parse(f"{MD5}\n# comment\n{MD5.upper()}\n\n{'f' * 32}\n")
    assert parsed.format == "md5"
    assert hashes(parsed, "md5") == [MD5, "f" * 32]
    assert parsed.duplicates_folded == 1


@pytest.mark.parametrize("sep", [",", ";"])
def test_plain_csv_with_optional_columns(sep: str) -> None:
    text = sep.join(["signal_type", "hash", "entry_id", "category", "source", "added_at"]) + "\n"
    text += sep.join(["pdq", PDQ_A, "e-1", "ncii", "hotline-x", "2026-01-02T03:04:05Z"]) + "\n"
    text += sep.join(["md5", MD5, "e-2", "", "", ""]) + "\n"
    text += sep.join(["photodna", "zzzz", "e-3", "", "", ""]) + "\n"
    parsed = parse(text, "list.csv")
    assert parsed.format == "csv"
    row = parsed.signals["pdq"].table.to_pylist()[0]
    assert (row["entry_id"], row["category"], row["source"]) == ("e-1", "ncii", "hotline-x")
    assert row["added_at"].isoformat() == "2026-01-02T03:04:05+00:00"
    assert parsed.signals["md5"].table.to_pylist()[0]["category"] == "cat"  # the list's --category fills gaps
    assert dict(parsed.ignored) == {"photodna": 1}


def test_threatexchange_csv_export_with_a_vpdq_signal() -> None:
    frames = f'["{PDQ_A},100,0.000", "{PDQ_B},90,1.000"]'.replace('"', '""')
    text = f'signal_type,signal_str,collab,category,tags\npdq,{PDQ_B},collab-1,,\nvpdq,"{frames}",collab-1,,\n'
    parsed = parse(text, "export.csv")
    assert hashes(parsed, "pdq") == [PDQ_B]
    vpdq = parsed.signals["vpdq"].table.to_pylist()[0]
    assert [f["pdq"] for f in vpdq["frames"]] == [PDQ_A, PDQ_B]
    assert vpdq["source"] == "collab-1"


def test_wide_csv_ignores_and_counts_hashes_chanwatch_cannot_compute() -> None:
    text = f"md5,sha1,photodna,netclean\n{MD5},{'1' * 40},AAAA,BBBB\n{'e' * 32},,CCCC,\n"
    parsed = parse(text, "hotline.csv")
    assert hashes(parsed, "md5") == [MD5, "e" * 32]
    assert dict(parsed.ignored) == {"sha1": 1, "photodna": 2, "netclean": 1}


def test_vpdq_tool_output_is_one_video() -> None:
    text = f"0,100,{PDQ_A},0.000\n1,40,{PDQ_B},1.000\n"
    parsed = parse(text, "clip-hashes.txt")
    assert parsed.format == "vpdq"
    entry = parsed.signals["vpdq"].table.to_pylist()[0]
    assert entry["entry_id"] == "clip-hashes"
    assert [(f["pdq"], f["quality"], f["ts"]) for f in entry["frames"]] == [(PDQ_A, 100, 0.0), (PDQ_B, 40, 1.0)]


@pytest.mark.parametrize(("text", "line", "problem"), [
    (f"pdq {PDQ_A}\npdq {PDQ_A[:-1]}\n", 2, "64 hex digits, got 63"),
    (f"pdq {PDQ_A}\n\npdq {PDQ_A[:-1]}x\n", 3, "not hexadecimal"),
    (f"pdq {PDQ_A}\nsimhash abc\n", 2, "unknown signal type 'simhash'"),
    (f"signal_type,hash\npdq,{PDQ_A}\npdq,{PDQ_B},extra\n", 3, "bad CSV row"),
    (f"signal_type,hash,added_at\npdq,{PDQ_A},yesterday\n", 2, "added_at"),
    (f"0,100,{PDQ_A},0.000\n1,100,{PDQ_A},zero\n", 2, "timestamp"),
    (f"{MD5}\n{MD5} extra\n", 2, "one MD5 per line"),
])
def test_bad_lines_name_file_and_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(BadInputError) as raised:
        parse(text, "bad.txt")
    assert str(raised.value).startswith(f"bad.txt:{line}: ")
    assert problem in str(raised.value)


def test_encoding_errors_name_the_line() -> None:
    data = f"pdq {PDQ_A}\npdq {PDQ_B}\n# caf\xe9\n".encode("latin-1")
    with pytest.raises(BadInputError, match=r"^bad.txt:3: not UTF-8"):
        parse_hash_list(data, "bad.txt", category="c")


def test_fast_path_and_line_parser_agree() -> None:
    """A big uniform file takes the vectorised path; the same content with a comment takes the other."""
    lines = [f"{i:064x}" for i in range(2000)] + [f"{5:064x}"]
    fast = parse("\n".join(lines) + "\n", signal="pdq")
    slow = parse("# header\n" + "\n".join(lines) + "\n", signal="pdq")
    assert hashes(fast, "pdq") == hashes(slow, "pdq")
    assert fast.duplicates_folded == slow.duplicates_folded == 1
    assert fast.signals["pdq"].table["line"].to_pylist()[:2] == [1, 2]
    assert slow.signals["pdq"].table["line"].to_pylist()[:2] == [2, 3]
    assert (fast.signals["pdq"].codes == slow.signals["pdq"].codes).all()


def test_first_occurrences_equals_numpy_unique_with_tied_prefixes() -> None:
    import numpy as np

    from processing.hashlists.parse import first_occurrences

    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, (20_000, 32), dtype=np.uint8)
    codes[500] = codes[7]  # a duplicate
    codes[900, :8] = codes[3, :8]  # same first 8 bytes, different rows
    codes[1000] = codes[900]
    codes[5:9, :8] = 0  # a run of tied prefixes
    rows = np.ascontiguousarray(codes).view(np.dtype((np.void, 32))).ravel()
    _, expected = np.unique(rows, return_index=True)
    assert first_occurrences(codes).tolist() == sorted(expected.tolist())
