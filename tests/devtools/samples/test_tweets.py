"""Tests for the tweets TSV generator: determinism, exact size, and each kind of defect, checked independently."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devtools.samples.tweets import TweetsOptions, generate_tweets_tsv, main

HEADER = "tweet_id\tdate\ttime\tlang\tcountry_code"
BIGINT_MAX = 2**63 - 1
LINES = 20_000


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _timestamp(day: str, time: str) -> datetime | None:
    try:
        return datetime.strptime(f"{day} {time}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def classify(line: str) -> str:
    """Bronze-style verdict for one line, written from the format description only."""
    if line.strip() == "":
        return "blank_line"
    if line == HEADER:
        return "repeated_header"
    fields = line.split("\t")
    if len(fields) != 5:
        return "wrong_column_count"
    tweet_id, day, time = fields[:3]
    if not tweet_id.isdigit() or len(tweet_id) > 19 or int(tweet_id) > BIGINT_MAX:
        return "bad_tweet_id"
    if _timestamp(day, time) is None:
        return "bad_timestamp"
    return "ok"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path = tmp_path_factory.mktemp("tweets") / "full_dataset.tsv"
    generate_tweets_tsv(path, LINES, seed=11)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def test_same_seed_gives_same_bytes_and_other_seed_differs(tmp_path: Path):
    generate_tweets_tsv(tmp_path / "a.tsv", 3_000, seed=3)
    generate_tweets_tsv(tmp_path / "b.tsv", 3_000, seed=3)
    generate_tweets_tsv(tmp_path / "c.tsv", 3_000, seed=4)
    assert _sha256(tmp_path / "a.tsv") == _sha256(tmp_path / "b.tsv")
    assert _sha256(tmp_path / "a.tsv") != _sha256(tmp_path / "c.tsv")
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("lines", [0, 1, 7, 999, 12_345])
def test_exact_line_count(tmp_path: Path, lines: int):
    path = tmp_path / "t.tsv"
    generate_tweets_tsv(path, lines, options=TweetsOptions(batch_lines=1_000))
    data = path.read_bytes()
    assert data.count(b"\n") == lines + 1
    assert data.endswith(b"\n")
    assert data.startswith(HEADER.encode() + b"\n")


def test_rejects_negative_lines(tmp_path: Path):
    with pytest.raises(ValueError, match="lines"):
        generate_tweets_tsv(tmp_path / "t.tsv", -1)


def test_header_and_valid_rows(sample: list[str]):
    assert sample[0] == HEADER
    rows = [line.split("\t") for line in sample[1:] if classify(line) == "ok"]
    assert len(rows) > 0.97 * LINES
    langs = Counter(row[3] for row in rows)
    assert langs.most_common(1)[0][0] == "en"
    assert {"en", "es", "pt", "fr", "und"} <= set(langs)
    assert all(2 <= len(lang) <= 3 and lang.isalpha() and lang.islower() for lang in langs)
    countries = Counter(row[4] for row in rows)
    assert countries[""] > 0.5 * len(rows)
    assert all(code == "" or (len(code) == 2 and code.isupper()) for code in countries)
    days = Counter(row[1] for row in rows)
    # The default window is 2020-03-28 plus two days; other dates only appear on the calendar-edge rows.
    assert {d for d, n in days.items() if n > 0.1 * len(rows)} == {"2020-03-28", "2020-03-29", "2020-03-30"}


def test_bad_lines_about_one_percent_with_every_reason(sample: list[str]):
    verdicts = Counter(classify(line) for line in sample[1:])
    bad = LINES - verdicts["ok"]
    assert 0.005 * LINES <= bad <= 0.015 * LINES
    for reason in ("blank_line", "repeated_header", "wrong_column_count", "bad_tweet_id", "bad_timestamp"):
        assert verdicts[reason] > 0, reason


def test_each_defect_variant_present(sample: list[str]):
    body = sample[1:]
    columns = Counter(len(line.split("\t")) for line in body if line.strip())
    assert columns[4] > 0 and columns[6] > 0, "too few and too many columns"
    ids = [line.split("\t")[0] for line in body if len(line.split("\t")) == 5 and line != HEADER]
    assert any(i and not i.isdigit() for i in ids), "letters in an id"
    assert "" in ids, "empty id"
    assert any(i.isdigit() and len(i) > 19 for i in ids), "more than 19 digits"
    assert any(i.isdigit() and len(i) == 19 and int(i) > BIGINT_MAX for i in ids), "19 digits beyond bigint"
    fields = [line.split("\t") for line in body if classify(line) == "bad_timestamp"]
    assert any(f[1] == "2020-02-30" for f in fields)
    assert any(f[2] == "24:00:01" for f in fields)
    assert any(f[2] == "12:61:00" for f in fields)
    assert any(not f[1][:4].isdigit() for f in fields), "garbage date"


def test_duplicates_exact_and_conflicting(sample: list[str]):
    seen: dict[str, str] = {}
    exact = conflicting = 0
    for line in sample[1:]:
        if classify(line) != "ok":
            continue
        tweet_id = line.split("\t")[0]
        if tweet_id not in seen:
            seen[tweet_id] = line
        elif seen[tweet_id] == line:
            exact += 1
        else:
            conflicting += 1
    assert exact > 0 and conflicting > 0
    assert 0.01 * LINES <= exact + conflicting <= 0.03 * LINES


def test_some_valid_lines_re_deliver_an_id_first_seen_on_a_rejected_line(sample: list[str]):
    """The ordering trap for de-duplication: the first valid occurrence comes after a rejected one."""
    rejected_ids: set[str] = set()
    accepted_ids: set[str] = set()
    re_delivered = 0
    for line in sample[1:]:
        tweet_id = line.split("\t")[0]
        if classify(line) != "ok":
            rejected_ids.add(tweet_id)
        elif tweet_id not in accepted_ids:
            re_delivered += tweet_id in rejected_ids
            accepted_ids.add(tweet_id)
    assert re_delivered > 0


def test_ids_carry_their_timestamp(sample: list[str]):
    # Snowflake ids: milliseconds since the Twitter epoch above bit 22; the row's second must match.
    for line in sample[1:]:
        if classify(line) != "ok":
            continue
        tweet_id, day, time = line.split("\t")[:3]
        created = datetime.fromtimestamp(((int(tweet_id) >> 22) + 1288834974657) / 1000, UTC)
        assert created.replace(microsecond=0) == _timestamp(day, time), line


def test_time_zone_edges(sample: list[str]):
    stamps = {(f[1], f[2]) for f in (line.split("\t") for line in sample[1:] if classify(line) == "ok")}
    for edge in [
        ("2019-12-31", "23:59:59"),
        ("2020-01-01", "00:00:00"),
        ("2020-02-29", "00:00:00"),
        ("2020-02-29", "23:59:59"),
        ("2020-03-31", "23:59:59"),
        ("2020-04-01", "00:00:00"),
        ("2020-03-28", "00:00:00"),
        ("2020-03-28", "23:59:59"),
        ("2020-03-29", "00:00:00"),
    ]:
        assert edge in stamps, edge


def test_daily_counts_depend_on_time_zone(sample: list[str]):
    utc_days: Counter[str] = Counter()
    berlin_days: Counter[str] = Counter()
    berlin = ZoneInfo("Europe/Berlin")
    for line in sample[1:]:
        if classify(line) != "ok":
            continue
        day, time = line.split("\t")[1:3]
        moment = _timestamp(day, time)
        utc_days[moment.date().isoformat()] += 1
        berlin_days[moment.astimezone(berlin).date().isoformat()] += 1
    assert utc_days != berlin_days
    assert sum(utc_days.values()) == sum(berlin_days.values())


def test_cli_writes_the_same_file(tmp_path: Path):
    main(["--lines", "500", "--seed", "5", "--out", str(tmp_path / "cli.tsv")])
    generate_tweets_tsv(tmp_path / "api.tsv", 500, seed=5)
    assert (tmp_path / "cli.tsv").read_bytes() == (tmp_path / "api.tsv").read_bytes()
