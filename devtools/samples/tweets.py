"""Deterministic generator of a tweets TSV shaped like the COVID-19 Twitter chatter `full_dataset.tsv`."""

from __future__ import annotations

import argparse
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

logger = logging.getLogger(__name__)

HEADER = "tweet_id\tdate\ttime\tlang\tcountry_code\n"

# Twitter snowflake ids carry the creation time in milliseconds since this epoch, shifted left by 22 bits.
TWITTER_EPOCH_MS = 1288834974657
# Regular rows use 21 low bits derived from the row number, edge rows set the 22nd: ids never collide by accident.
_LOW_MASK = (1 << 21) - 1
_EDGE_FLAG = 1 << 21
_LOW_MULTIPLIER = 0x9E3779  # odd, so row number -> low bits is a bijection modulo 2**21
_JITTER_BITS = 10  # up to 1023 ms added to each row's time so ids do not look evenly spaced

# Rough shares seen in the public dataset: English dominant, then Spanish, undetermined, Portuguese, French...
LANGUAGES: dict[str, int] = {
    "en": 600,
    "es": 140,
    "und": 50,
    "pt": 40,
    "fr": 35,
    "in": 25,
    "it": 20,
    "ja": 18,
    "de": 15,
    "th": 12,
    "ar": 10,
    "hi": 8,
    "tr": 7,
    "ca": 5,
    "tl": 5,
    "zh": 3,
    "ko": 3,
}
# Most tweets are not geotagged, so the country code is usually empty.
COUNTRIES: dict[str, int] = {
    "": 880,
    "US": 45,
    "GB": 12,
    "IN": 10,
    "BR": 8,
    "ES": 7,
    "MX": 6,
    "AR": 5,
    "CA": 5,
    "FR": 4,
    "NG": 3,
    "PH": 3,
    "ZA": 2,
}

# Calendar edges outside the sampled days: year end, the leap day and month ends around it.
CALENDAR_EDGES: tuple[str, ...] = (
    "2019-12-31 23:59:59",
    "2020-01-01 00:00:00",
    "2020-02-28 23:59:59",
    "2020-02-29 00:00:00",
    "2020-02-29 12:00:00",
    "2020-02-29 23:59:59",
    "2020-03-01 00:00:00",
    "2020-03-31 23:59:59",
    "2020-04-01 00:00:00",
)

# Each defect maps a valid row's fields to one bad line (without its newline); repeated so common kinds weigh more.
_BAD_LINE_KINDS: tuple[str, ...] = (
    "blank",
    "repeated_header",
    "too_few_columns",
    "too_many_columns",
    "id_letters",
    "id_empty",
    "id_too_long",
    "id_beyond_bigint",
    "date_feb_30",
    "time_24",
    "time_minute_61",
    "timestamp_garbage",
    "blank",
    "too_few_columns",
    "id_letters",
    "date_feb_29_non_leap",
    "timestamp_slashes",
)


@dataclass(frozen=True)
class TweetsOptions:
    """Shape of the generated file.

    Attributes:
        start: First UTC day of regular rows.
        days: Number of days covered by regular rows.
        bad_ratio: Share of lines that bronze must reject.
        duplicate_ratio: Share of lines that repeat an earlier tweet id; a quarter of them repeat the id of an
            earlier garbled line, so they are the first valid occurrence of it.
        edge_ratio: Share of lines stamped exactly at day, month or year boundaries.
        batch_lines: Lines built in memory before each write.
    """

    start: date = date(2020, 3, 28)
    days: int = 3
    bad_ratio: float = 0.01
    duplicate_ratio: float = 0.02
    edge_ratio: float = 0.002
    batch_lines: int = 100_000


def generate_tweets_tsv(
    path: str | os.PathLike[str], lines: int, seed: int = 7, options: TweetsOptions | None = None
) -> None:
    """Write a tweets TSV with a header and exactly `lines` further lines, streaming in batches.

    The same `lines`, `seed` and options always give the same bytes. The file is written next to `path`
    and renamed into place, so a reader never sees half a file.

    Args:
        path: Destination file.
        lines: Number of lines after the header.
        seed: Seed of the random generator.
        options: Dates and defect ratios; defaults to `TweetsOptions()`.

    Raises:
        ValueError: If `lines` is negative or the options are out of range.
    """
    opts = options or TweetsOptions()
    _validate(lines, opts)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    generator = _Generator(lines, seed, opts)
    with partial.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
        out.write(HEADER)
        for chunk in generator.batches():
            out.write(chunk)
    os.replace(partial, target)
    logger.info("wrote %s: header + %d lines (seed %d)", target, lines, seed)


def _validate(lines: int, opts: TweetsOptions) -> None:
    if lines < 0:
        raise ValueError(f"lines must be >= 0, got {lines}")
    if opts.days < 1:
        raise ValueError(f"days must be >= 1, got {opts.days}")
    if opts.batch_lines < 1:
        raise ValueError(f"batch_lines must be >= 1, got {opts.batch_lines}")
    ratios = (opts.bad_ratio, opts.duplicate_ratio, opts.edge_ratio)
    if min(ratios) < 0 or sum(ratios) > 0.5:
        raise ValueError(f"defect ratios must be >= 0 and sum to at most 0.5, got {ratios}")


def _weighted_table(weights: dict[str, int], size: int) -> list[str]:
    """Expand weights into a lookup table of `size` entries, indexable by random bits."""
    total = sum(weights.values())
    table: list[str] = []
    for value, weight in weights.items():
        table.extend([value] * round(weight * size / total))
    table = (table + [next(iter(weights))] * size)[:size]
    return table


def _snowflake(ms: int, low: int) -> int:
    return ((ms - TWITTER_EPOCH_MS) << 22) | low


def _parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


class _Generator:
    """Builds the file body batch by batch; all randomness comes from one seeded `random.Random`."""

    _TABLE_BITS = 12

    def __init__(self, lines: int, seed: int, opts: TweetsOptions) -> None:
        self.lines = lines
        self.opts = opts
        self.rnd = random.Random(seed)
        start = datetime(opts.start.year, opts.start.month, opts.start.day, tzinfo=UTC)
        self.start_ms = int(start.timestamp() * 1000)
        span_ms = opts.days * 86_400_000 - (1 << _JITTER_BITS)
        self.step_ms = span_ms / lines if lines else 0.0
        self.dates = [(opts.start + timedelta(days=d)).isoformat() for d in range(opts.days)]
        self.times = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]
        size = 1 << self._TABLE_BITS
        langs = _weighted_table(LANGUAGES, size)
        countries = _weighted_table(COUNTRIES, size)
        # Pairing through a second shuffled table keeps language and country independent with one draw a row.
        shuffled = countries[:]
        random.Random(seed + 1).shuffle(shuffled)
        self.lang_country = [f"{lang}\t{cc}" for lang, cc in zip(langs, shuffled, strict=True)]
        self.countries = [c for c in COUNTRIES if c]
        self.langs = list(LANGUAGES)
        self.edges = self._edge_timestamps()
        self.bad_count = 0
        self.edge_count = 0
        self.dup_count = 0
        self.previous: list[str] = []

    def _edge_timestamps(self) -> list[datetime]:
        edges = {_parse_utc(text) for text in CALENDAR_EDGES}
        first = datetime(self.opts.start.year, self.opts.start.month, self.opts.start.day, tzinfo=UTC)
        for day in range(self.opts.days + 1):
            midnight = first + timedelta(days=day)
            edges.add(midnight - timedelta(seconds=1))
            edges.add(midnight)
        return sorted(edges)

    def batches(self) -> Iterator[str]:
        size = self.opts.batch_lines
        for begin in range(0, self.lines, size):
            end = min(begin + size, self.lines)
            yield self._batch(begin, end)

    def _quota(self, ratio: float, begin: int, end: int) -> int:
        # Differences of floors spread the exact total over batches whatever the batch size.
        return int(end * ratio) - int(begin * ratio)

    def _batch(self, begin: int, end: int) -> str:
        rows = self._regular_rows(begin, end)
        n_bad = self._quota(self.opts.bad_ratio, begin, end)
        n_dup = self._quota(self.opts.duplicate_ratio, begin, end)
        n_edge = self._quota(self.opts.edge_ratio, begin, end)
        special = self.rnd.sample(range(len(rows)), n_bad + n_dup + n_edge)
        bad = special[:n_bad]
        dups = sorted(special[n_bad : n_bad + n_dup])
        edges = special[n_bad + n_dup :]
        taken = set(special)
        for pos in edges:
            rows[pos] = self._edge_row()
        # Duplicates copy rows already written, so they are filled in file order after the regular and edge rows.
        # Every fourth is instead the re-delivery of a line that is garbled earlier in the file: its first *valid*
        # occurrence, which a pipeline must accept although its id was seen on a rejected line.
        for pos in dups:
            garbled = [b for b in bad if b < pos]
            if self.dup_count % 4 == 3 and garbled:
                self.dup_count += 1
                rows[pos] = rows[self.rnd.choice(garbled)]
                continue
            source = self._pick_source(rows, pos, taken)
            if source is not None:
                rows[pos] = self._duplicate(source)
        for pos in bad:
            rows[pos] = self._bad_line(rows[pos])
        originals = [row for i, row in enumerate(rows) if i not in taken]
        self.previous = originals[-10_000:]
        return "".join(rows)

    def _regular_rows(self, begin: int, end: int) -> list[str]:
        getrandbits = self.rnd.getrandbits
        start_ms, step_ms = self.start_ms, self.step_ms
        start_s = start_ms // 1000
        dates, times, lang_country = self.dates, self.times, self.lang_country
        rows = []
        append = rows.append
        for i in range(begin, end):
            ms = start_ms + int(i * step_ms) + getrandbits(_JITTER_BITS)
            day, second = divmod(ms // 1000 - start_s, 86_400)
            tweet_id = ((ms - TWITTER_EPOCH_MS) << 22) | ((i * _LOW_MULTIPLIER) & _LOW_MASK)
            append(f"{tweet_id}\t{dates[day]}\t{times[second]}\t{lang_country[getrandbits(12)]}\n")
        return rows

    def _edge_row(self) -> str:
        moment = self.edges[self.edge_count % len(self.edges)]
        low = _EDGE_FLAG | (self.edge_count & _LOW_MASK)
        self.edge_count += 1
        ms = int(moment.timestamp()) * 1000 + self.rnd.getrandbits(_JITTER_BITS) % 1000
        lang_country = self.lang_country[self.rnd.getrandbits(self._TABLE_BITS)]
        return f"{_snowflake(ms, low)}\t{moment:%Y-%m-%d}\t{moment:%H:%M:%S}\t{lang_country}\n"

    def _pick_source(self, rows: list[str], pos: int, taken: set[int]) -> str | None:
        pool = len(self.previous) + pos
        for _ in range(20):
            if pool == 0:
                return None
            pick = self.rnd.randrange(pool)
            if pick < len(self.previous):
                return self.previous[pick]
            if pick - len(self.previous) not in taken:
                return rows[pick - len(self.previous)]
        return None

    def _duplicate(self, source: str) -> str:
        self.dup_count += 1
        if self.dup_count % 2:
            return source
        tweet_id, day, time, lang, country = source.rstrip("\n").split("\t")
        # Same id, different payload: a re-delivered tweet whose language or place was re-labelled.
        lang = self.rnd.choice([code for code in self.langs if code != lang])
        country = self.rnd.choice([code for code in self.countries if code != country])
        return f"{tweet_id}\t{day}\t{time}\t{lang}\t{country}\n"

    def _bad_line(self, row: str) -> str:
        kind = _BAD_LINE_KINDS[self.bad_count % len(_BAD_LINE_KINDS)]
        self.bad_count += 1
        tweet_id, day, time, lang, country = row.rstrip("\n").split("\t")
        return _BAD_LINE_BUILDERS[kind](tweet_id, day, time, lang, country) + "\n"


def _join(*fields: str) -> str:
    return "\t".join(fields)


_BAD_LINE_BUILDERS = {
    "blank": lambda i, d, t, lang, cc: "",
    "repeated_header": lambda i, d, t, lang, cc: HEADER.rstrip("\n"),
    "too_few_columns": lambda i, d, t, lang, cc: _join(i, d, t, lang),
    "too_many_columns": lambda i, d, t, lang, cc: _join(i, d, t, lang, cc, "extra"),
    "id_letters": lambda i, d, t, lang, cc: _join(i[:-6] + "abc" + i[-3:], d, t, lang, cc),
    "id_empty": lambda i, d, t, lang, cc: _join("", d, t, lang, cc),
    "id_too_long": lambda i, d, t, lang, cc: _join(i + "0042", d, t, lang, cc),
    "id_beyond_bigint": lambda i, d, t, lang, cc: _join("9" * 19, d, t, lang, cc),
    "date_feb_30": lambda i, d, t, lang, cc: _join(i, "2020-02-30", t, lang, cc),
    "date_feb_29_non_leap": lambda i, d, t, lang, cc: _join(i, "2021-02-29", t, lang, cc),
    "time_24": lambda i, d, t, lang, cc: _join(i, d, "24:00:01", lang, cc),
    "time_minute_61": lambda i, d, t, lang, cc: _join(i, d, "12:61:00", lang, cc),
    "timestamp_garbage": lambda i, d, t, lang, cc: _join(i, "yesterday", "noon", lang, cc),
    "timestamp_slashes": lambda i, d, t, lang, cc: _join(i, d.replace("-", "/"), t, lang, cc),
}


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m devtools.samples.tweets --lines N --seed S --out PATH`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, required=True, help="lines after the header")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True, help="destination TSV file")
    parser.add_argument("--start", type=date.fromisoformat, default=TweetsOptions.start, help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=TweetsOptions.days)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    generate_tweets_tsv(args.out, args.lines, args.seed, TweetsOptions(start=args.start, days=args.days))


if __name__ == "__main__":
    main()
