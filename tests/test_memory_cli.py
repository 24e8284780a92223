"""`workbench memory` as a user types it: import, search, stats, export, and bad input refused in one line."""

from __future__ import annotations

import json

from helpers import require, run_cli

from workbench.memory import available

ROWS = [
    {"kind": "solution", "owner": "local", "text": "Write is_palindrome(s) that ignores case and spaces",
     "body": {"files": {"pal.py": "def is_palindrome(s):\n    t = s.replace(' ', '').lower()\n    return t == t[::-1]\n"},
              "language": "python"}, "language": "python", "verified": True},
    {"kind": "failure_note", "owner": "local", "text": "Parse ISO dates with time zones",
     "body": {"note": "the code loop stopped (max_rounds): 2/5 tests pass"}},
]


def _write(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_import_search_stats_export_round_trip(tmp_path):
    require(available(), "the embedder is not installed: run `make venv`")
    source = tmp_path / "in.jsonl"
    _write(source, ROWS)
    done = run_cli("memory", "import", str(source))
    assert done.returncode == 0, done.stderr
    assert "imported 2 entries" in done.stdout
    found = run_cli("memory", "search", "check whether a string is a palindrome", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["kind"] == "solution" and hits[0]["similarity"] > 0.5 and "pal.py" in hits[0]["body"]["files"]
    assert json.loads(run_cli("memory", "search", "palindrome", "--json", "--owner", "someone-else").stdout) == []
    out = tmp_path / "out.jsonl"
    assert run_cli("memory", "export", str(out)).returncode == 0
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["text"] for r in exported) == sorted(r["text"] for r in ROWS)
    # a malformed row: one line naming it, exit 2, and nothing of the file is imported
    bad = tmp_path / "bad.jsonl"
    _write(bad, [ROWS[0] | {"text": "A new entry that must not land"}, '{"kind": "solution", "owner": ',
                 ROWS[1]])
    refused = run_cli("memory", "import", str(bad))
    assert refused.returncode == 2
    assert "row 2: not JSON" in refused.stderr and "nothing was imported" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    unverified = tmp_path / "unverified.jsonl"
    _write(unverified, [ROWS[1], ROWS[0] | {"verified": False}])
    refused = run_cli("memory", "import", str(unverified))
    assert refused.returncode == 2 and "row 2: Only verified solutions" in refused.stderr
    stats = json.loads(run_cli("memory", "stats", "--json").stdout)
    assert stats["entries"] == 2 and stats["by_kind"] == {"solution": 1, "failure_note": 1}


def test_bad_queries_are_refused_in_one_line():
    empty = run_cli("memory", "search", "  ")
    assert empty.returncode == 2 and "query is empty" in empty.stderr and "Traceback" not in empty.stderr
    huge = run_cli("memory", "search", "-", input="x" * 1_000_000)  # 1 MB: more than one argument can hold
    assert huge.returncode == 2 and "1,000,000 characters" in huge.stderr and "Traceback" not in huge.stderr
    assert len(huge.stderr.strip().splitlines()) == 1
