"""Tweets transformations: input rows beside the rows expected from them."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

pytestmark = pytest.mark.spark

DS = "2026-11-20"
HEADER = "tweet_id\tdate\ttime\tlang\tcountry_code"
FILE = "s3a://landing/tweets/ds=2026-11-20/full_dataset.tsv"
UTC = dt.UTC


def raw_rows(spark, lines: list[str], source: str = FILE):
    from lakehouse_jobs.tweets import RAW_SCHEMA

    loaded = dt.datetime(2026, 11, 21, tzinfo=UTC)
    rows = [(dt.date.fromisoformat(DS), line, source, n, loaded) for n, line in enumerate(lines, start=1)]
    return spark.createDataFrame(rows, RAW_SCHEMA)


def kinds(df) -> list[tuple]:
    return sorted((r["_line_number"], r["kind"], r["reason"]) for r in df.collect())


def test_classify_every_kind_of_line(spark):
    from lakehouse_jobs.tweets import classify

    lines = [
        HEADER,  # 1 the file's header: not a record
        "100\t2020-03-28\t23:59:59\ten\tUS",  # 2 valid
        "100\t2020-03-28\t23:59:59\ten\tUS",  # 3 exact duplicate
        "100\t2020-03-29\t01:00:00\tes\t",  # 4 same id, other fields: duplicate
        "",  # 5
        "   ",  # 6 whitespace only
        HEADER,  # 7 header again
        "101\t2020-03-28\t10:00:00\ten",  # 8 four columns
        "102\t2020-03-28\t10:00:00\ten\tUS\textra",  # 9 six columns
        "1o3\t2020-03-28\t10:00:00\ten\t",  # 10 letter in id
        "\t2020-03-28\t10:00:00\ten\t",  # 11 empty id
        "99999999999999999999\t2020-03-28\t10:00:00\ten\t",  # 12 beyond BIGINT
        "104\t2020-02-30\t10:00:00\ten\t",  # 13 no such day
        "105\t2020-03-28\t24:00:01\ten\t",  # 14 no such hour
        "106\t2020-03-28\t12:61:00\ten\t",  # 15 no such minute
        "107\tyesterday\tnoon\ten\t",  # 16 garbage
        "108\t2020-02-29\t00:00:00\t\t",  # 17 valid leap day, empty lang and country
        "9223372036854775807\t2020-12-31\t23:59:59\tpt\tbr",  # 18 largest BIGINT, valid
    ]
    expected = [
        (1, "header", None),
        (2, "record", None),
        (3, "duplicate", None),
        (4, "duplicate", None),
        (5, "reject", "blank_line"),
        (6, "reject", "blank_line"),
        (7, "reject", "repeated_header"),
        (8, "reject", "wrong_column_count"),
        (9, "reject", "wrong_column_count"),
        (10, "reject", "bad_tweet_id"),
        (11, "reject", "bad_tweet_id"),
        (12, "reject", "bad_tweet_id"),
        (13, "reject", "bad_timestamp"),
        (14, "reject", "bad_timestamp"),
        (15, "reject", "bad_timestamp"),
        (16, "reject", "bad_timestamp"),
        (17, "record", None),
        (18, "record", None),
    ]
    assert kinds(classify(raw_rows(spark, lines))) == expected


def test_accepted_rows_are_typed_in_utc(spark):
    from lakehouse_jobs.tweets import accepted, classify

    lines = [
        HEADER,
        "100\t2020-03-28\t23:59:59\tEN\tus",
        "108\t2020-02-29\t00:00:00\t\t",
        "9223372036854775807\t2020-12-31\t23:59:59\tpt\tbr",
    ]
    rows = accepted(classify(raw_rows(spark, lines))).select("tweet_id", "created_at", "lang", "country_code")
    expected = [
        (100, dt.datetime(2020, 3, 28, 23, 59, 59, tzinfo=UTC), "en", "US"),
        (108, dt.datetime(2020, 2, 29, 0, 0, 0, tzinfo=UTC), None, None),
        (9223372036854775807, dt.datetime(2020, 12, 31, 23, 59, 59, tzinfo=UTC), "pt", "BR"),
    ]
    got = sorted(
        (r["tweet_id"], r["created_at"].replace(tzinfo=UTC), r["lang"], r["country_code"]) for r in rows.collect()
    )
    assert got == expected


def test_first_occurrence_wins_across_files(spark):
    from lakehouse_jobs.tweets import accepted, classify

    a = raw_rows(spark, [HEADER, "7\t2020-03-28\t10:00:00\ten\t"], source="s3a://landing/tweets/ds=x/a.tsv")
    b = raw_rows(spark, [HEADER, "7\t2020-03-28\t11:00:00\tfr\t"], source="s3a://landing/tweets/ds=x/b.tsv")
    rows = accepted(classify(a.unionByName(b))).collect()
    assert [(r["tweet_id"], r["lang"], r["_source_file"]) for r in rows] == [
        (7, "en", "s3a://landing/tweets/ds=x/a.tsv")
    ]


def test_a_rejected_line_never_shadows_a_later_valid_one(spark):
    """A duplicate repeats an earlier *accepted* line: ids first seen on malformed lines stay records."""
    from lakehouse_jobs.tweets import accepted, classify

    lines = [
        HEADER,  # 1
        "7\t2020-03-28\t25:00:00\ten\t",  # 2 id 7, bad timestamp: a reject
        "8\t2020-03-28\t10:00:00\ten",  # 3 id 8, four columns: a reject
        "7\t2020-03-28\t10:00:00\ten\t",  # 4 the first *valid* id 7: the record
        "8\t2020-03-28\t11:00:00\tfr\t",  # 5 the first valid id 8: the record
        "7\t2020-03-28\t12:00:00\tde\t",  # 6 a repeat of the accepted line 4: a duplicate
    ]
    classified = classify(raw_rows(spark, lines))
    assert kinds(classified) == [
        (1, "header", None),
        (2, "reject", "bad_timestamp"),
        (3, "reject", "wrong_column_count"),
        (4, "record", None),
        (5, "record", None),
        (6, "duplicate", None),
    ]
    assert sorted((r["tweet_id"], r["lang"]) for r in accepted(classified).collect()) == [(7, "en"), (8, "fr")]


def bronze_rows(spark, rows: list[tuple]):
    """Bronze rows from (tweet_id, created_at, lang) or (tweet_id, created_at, lang, country_code) tuples."""
    from lakehouse_jobs.tweets import BRONZE_SCHEMA

    loaded = dt.datetime(2026, 11, 21, tzinfo=UTC)
    data = [
        (
            dt.date.fromisoformat(DS),
            tid,
            dt.datetime.fromisoformat(ts).replace(tzinfo=UTC),
            lang,
            country,
            FILE,
            i,
            loaded,
        )
        for i, (tid, ts, lang, country) in enumerate(((*row, None)[:4] for row in rows), start=2)
    ]
    return spark.createDataFrame(data, BRONZE_SCHEMA)


BRONZE = [
    (1, "2020-03-28 23:00:00", "en"),
    (2, "2020-03-28 23:59:59", "en"),
    (3, "2020-03-29 00:00:00", "es"),
    (4, "2020-03-29 00:30:00", None),
    (5, "2020-12-31 23:59:59", "en"),
    (6, "2021-01-01 00:00:00", "pt"),
]


def test_per_hour(spark):
    from lakehouse_jobs.tweets import per_hour

    got = [(r["hour_start"].replace(tzinfo=UTC), r["tweets"]) for r in per_hour(bronze_rows(spark, BRONZE)).collect()]
    expected = [
        (dt.datetime(2020, 3, 28, 23, tzinfo=UTC), 2),
        (dt.datetime(2020, 3, 29, 0, tzinfo=UTC), 2),
        (dt.datetime(2020, 12, 31, 23, tzinfo=UTC), 1),
        (dt.datetime(2021, 1, 1, 0, tzinfo=UTC), 1),
    ]
    assert got == expected


def test_per_day(spark):
    from lakehouse_jobs.tweets import per_day

    got = [(r["day"], r["tweets"]) for r in per_day(bronze_rows(spark, BRONZE)).collect()]
    expected = [
        (dt.date(2020, 3, 28), 2),
        (dt.date(2020, 3, 29), 2),
        (dt.date(2020, 12, 31), 1),
        (dt.date(2021, 1, 1), 1),
    ]
    assert got == expected


def test_by_language_counts_missing_as_und(spark):
    from lakehouse_jobs.tweets import by_language

    got = [(r["lang"], r["tweets"]) for r in by_language(bronze_rows(spark, BRONZE)).collect()]
    assert got == [("en", 3), ("es", 1), ("pt", 1), ("und", 1)]


def test_by_country_counts_tweets_without_a_country_as_zz(spark):
    from lakehouse_jobs.tweets import by_country

    rows = [
        (1, "2020-03-28 23:00:00", "en", "US"),
        (2, "2020-03-28 23:10:00", "en", None),
        (3, "2020-03-29 00:00:00", "es", "ES"),
    ]
    rows += [
        (4, "2020-03-29 00:30:00", "en", "US"),
        (5, "2020-03-29 01:00:00", None, None),
        (6, "2020-03-29 02:00:00", "pt", "BR"),
    ]
    expected = Counter(country or "ZZ" for (*_, country) in rows)
    got = [(r["country_code"], r["tweets"]) for r in by_country(bronze_rows(spark, rows)).collect()]
    # Most tweeted first, ties by code.
    assert got == sorted(expected.items(), key=lambda item: (-item[1], item[0]))


def test_reconciliation_accounts_for_every_line():
    from lakehouse_jobs.tweets import Reconciliation

    ok = Reconciliation(raw=10, headers=1, accepted=6, duplicates=2, rejects=1)
    ok.check()
    assert ok.records == 9
    assert ok.reject_ratio == pytest.approx(1 / 9)
    with pytest.raises(AssertionError, match="records lost"):
        Reconciliation(raw=10, headers=1, accepted=6, duplicates=1, rejects=1).check()
