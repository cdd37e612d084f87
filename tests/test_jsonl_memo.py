"""``codesign.jsonio.JsonlMemo``, the append-only JSON-lines memo the benchmarks' measurement
caches share between processes: a miss re-reads the file (another writer's rows), rows of
another protocol do not count, a torn last line is skipped, and which duplicate wins is chosen."""
import json

import pytest

from codesign.jsonio import JsonlMemo


def entry(row):
    return (row["k"], row["v"]) if row.get("protocol") == "p1" else None


def test_two_writers_see_each_others_rows_and_the_protocol_filters(tmp_path):
    f = tmp_path / "measured.jsonl"
    a, b = JsonlMemo(f, entry), JsonlMemo(f, entry)
    assert a.get("x") is None and "x" not in a
    a.put("x", 1.5, {"k": "x", "v": 1.5, "protocol": "p1"})
    assert b.get("x") == 1.5 and "x" in b                     # b's miss re-read the file
    b.put("y", 2.0, {"k": "y", "v": 2.0, "protocol": "p1"})
    with open(f, "a") as fh:                                   # another protocol, then a torn line
        fh.write(json.dumps({"k": "z", "v": 9.0, "protocol": "p2"}) + "\n")
        fh.write('{"k": "w", "v": 3')
    assert a.get("y") == 2.0 and a.get("z") is None and a.get("w") is None
    assert JsonlMemo(f, entry).cache == {"x": 1.5, "y": 2.0}


def test_which_duplicate_wins(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text("".join(json.dumps({"k": "x", "v": v, "protocol": "p1"}) + "\n" for v in (1.0, 2.0)))
    assert JsonlMemo(f, entry).get("x") == 1.0
    assert JsonlMemo(f, entry, keep="last").get("x") == 2.0
    with pytest.raises(ValueError):
        JsonlMemo(f, entry, keep="any")
    assert JsonlMemo(None, entry).get("x") is None             # no file: memory only
