"""Deterministic generator of a Pagila-shaped DVD-rental PostgreSQL database, with the defects bronze must refuse."""

from __future__ import annotations

import argparse
import io
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

logger = logging.getLogger(__name__)

# Pagila's columns for the twelve tables (no language/actor tables, no staff password or picture, no film full-text
# column). Tables are created without constraints so that the defects below can be loaded; the keys, foreign keys
# and checks are added afterwards, as NOT VALID where old rows break them (as on a legacy database whose rules
# arrived after its data).
TABLES: dict[str, str] = {
    "country": "country_id integer NOT NULL, country text NOT NULL, last_update timestamptz NOT NULL",
    "city": (
        "city_id integer NOT NULL, city text NOT NULL, country_id integer NOT NULL, last_update timestamptz NOT NULL"
    ),
    "address": (
        "address_id integer NOT NULL, address text NOT NULL, address2 text, district text NOT NULL, "
        "city_id integer NOT NULL, postal_code text, phone text NOT NULL, last_update timestamptz NOT NULL"
    ),
    "category": "category_id integer NOT NULL, name text NOT NULL, last_update timestamptz NOT NULL",
    "film": (
        "film_id integer NOT NULL, title text NOT NULL, description text, release_year integer, "
        "language_id integer NOT NULL, rental_duration smallint NOT NULL, rental_rate numeric(4,2) NOT NULL, "
        "length smallint, replacement_cost numeric(5,2) NOT NULL, rating text, last_update timestamptz NOT NULL"
    ),
    "film_category": "film_id integer NOT NULL, category_id integer NOT NULL, last_update timestamptz NOT NULL",
    "store": (
        "store_id integer NOT NULL, manager_staff_id integer NOT NULL, address_id integer NOT NULL, "
        "last_update timestamptz NOT NULL"
    ),
    "staff": (
        "staff_id integer NOT NULL, first_name text NOT NULL, last_name text NOT NULL, address_id integer NOT NULL, "
        "email text, store_id integer NOT NULL, active boolean NOT NULL, username text NOT NULL, "
        "last_update timestamptz NOT NULL"
    ),
    "inventory": (
        "inventory_id integer NOT NULL, film_id integer NOT NULL, store_id integer NOT NULL, "
        "last_update timestamptz NOT NULL"
    ),
    "customer": (
        "customer_id integer NOT NULL, store_id integer NOT NULL, first_name text NOT NULL, last_name text NOT NULL, "
        "email text, address_id integer NOT NULL, activebool boolean NOT NULL, create_date date NOT NULL, "
        "last_update timestamptz, active integer"
    ),
    "rental": (
        "rental_id integer NOT NULL, rental_date timestamptz NOT NULL, inventory_id integer NOT NULL, "
        "customer_id integer NOT NULL, return_date timestamptz, staff_id integer NOT NULL, "
        "last_update timestamptz NOT NULL"
    ),
    "payment": (
        "payment_id integer NOT NULL, customer_id integer NOT NULL, staff_id integer NOT NULL, "
        "rental_id integer NOT NULL, amount numeric(5,2) NOT NULL, payment_date timestamptz NOT NULL"
    ),
}
# rental and payment carry re-delivered rows, so their ids get plain indexes instead of primary keys.
PRIMARY_KEYS = {
    "country": "country_id",
    "city": "city_id",
    "address": "address_id",
    "category": "category_id",
    "film": "film_id",
    "film_category": "film_id, category_id",
    "store": "store_id",
    "staff": "staff_id",
    "inventory": "inventory_id",
    "customer": "customer_id",
}
FOREIGN_KEYS = (
    ("city", "country_id", "country"),
    ("address", "city_id", "city"),
    ("film_category", "film_id", "film"),
    ("film_category", "category_id", "category"),
    ("store", "address_id", "address"),
    ("staff", "address_id", "address"),
    ("staff", "store_id", "store"),
    ("inventory", "film_id", "film"),
    ("inventory", "store_id", "store"),
    ("customer", "address_id", "address"),
    ("customer", "store_id", "store"),
    ("rental", "inventory_id", "inventory"),
    ("rental", "customer_id", "customer"),
    ("rental", "staff_id", "staff"),
    ("payment", "customer_id", "customer"),
    ("payment", "staff_id", "staff"),
)
CHECKS = (
    ("payment", "payment_amount_not_negative", "amount >= 0"),
    ("rental", "rental_returned_after_rented", "return_date IS NULL OR return_date >= rental_date"),
)
INDEXES = (("rental", "rental_id"), ("rental", "rental_date"), ("payment", "payment_id"), ("payment", "payment_date"))

# Weighted so that a few countries hold most customers, as in Pagila (India, China, the United States...).
COUNTRIES = (
    *("India", "China", "United States", "Japan", "Mexico", "Brazil", "Russian Federation", "Philippines"),
    *("Turkey", "Indonesia", "Nigeria", "Argentina", "Taiwan", "South Africa", "Iran", "United Kingdom"),
    *("Poland", "Germany", "Italy", "Vietnam", "Egypt", "Colombia", "Spain", "Venezuela", "Ukraine", "Canada"),
    *("Pakistan", "France", "Peru", "Saudi Arabia", "Netherlands", "Yemen", "Israel", "Austria", "Chile"),
    *("South Korea", "Malaysia", "Thailand", "Kenya", "Morocco", "Ecuador", "Bangladesh", "Algeria", "Greece"),
)
CATEGORIES = (
    *("Action", "Animation", "Children", "Classics", "Comedy", "Documentary", "Drama", "Family"),
    *("Foreign", "Games", "Horror", "Music", "New", "Sci-Fi", "Sports", "Travel"),
)
FIRST_NAMES = ("MARY", "PATRICIA", "LINDA", "BARBARA", "ELIZABETH", "JENNIFER", "MARIA", "SUSAN", "JOHN", "ROBERT")
LAST_NAMES = ("SMITH", "JOHNSON", "WILLIAMS", "JONES", "BROWN", "DAVIS", "MILLER", "WILSON", "MOORE", "TAYLOR")
WORDS = ("ACADEMY", "DINOSAUR", "ACE", "GOLDFINGER", "ADAPTATION", "HOLES", "AFFAIR", "PREJUDICE", "AGENT", "TRUMAN")
RATINGS = ("G", "PG", "PG-13", "R", "NC-17")
RENTAL_RATES = (Decimal("0.99"), Decimal("2.99"), Decimal("4.99"))
FILMS = 1000
STORES = 2  # one manager (staff member) each
# Rentals per hour of the day (UTC): quiet nights, busy evenings.
HOURLY_WEIGHTS = (2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 7, 6, 6, 7, 8, 10, 12, 12, 10, 7, 4)
ORPHAN_OFFSET = 1_000_000  # ids at or above this never exist
UPDATED = datetime(2026, 1, 1, tzinfo=UTC)  # last_update of the reference tables


@dataclass(frozen=True)
class RentalsOptions:
    """Shape of the generated database.

    Attributes:
        rentals: Rentals to generate (regular ones; re-delivered copies come on top).
        seed: Seed of the random generators.
        start: First UTC day with rentals.
        days: Number of consecutive days the rentals are spread over.
        defect_every: Within each day, each kind of defective rental or payment recurs every this many rentals.
        pay_on_return_every: Every this many rentals of a day (0: none), the payment is taken when the copy comes
            back instead of at checkout, often days later (a payment whose rental is of an earlier day).
        chunk_rows: Rows built in memory before each COPY.
    """

    rentals: int
    seed: int = 7
    start: date = date(2026, 11, 17)
    days: int = 5
    defect_every: int = 250
    pay_on_return_every: int = 0
    chunk_rows: int = 50_000

    @property
    def customers(self) -> int:
        return max(40, self.rentals // 25)  # Pagila: 599 customers for 16,044 rentals

    @property
    def cities(self) -> int:
        return min(600, max(30, self.rentals // 40))

    @property
    def inventory(self) -> int:
        return min(FILMS * 8, max(200, self.rentals // 4))


# Rental defects: position of the rental within its day modulo defect_every.
DUPLICATE_RENTAL, ORPHAN_CUSTOMER, ORPHAN_INVENTORY, RETURN_BEFORE_RENTAL = 7, 11, 13, 17
# Payment defects, by the position of their rental.
NEGATIVE_AMOUNT, ORPHAN_RENTAL, DUPLICATE_PAYMENT = 23, 29, 31


def _field(value: object) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class _CopyBuffer:
    """Rows of one table in COPY text format, sent to the server every ``chunk_rows`` rows."""

    def __init__(self, cur, table: str, chunk_rows: int) -> None:
        self.cur, self.table, self.chunk_rows = cur, table, chunk_rows
        self.buffer, self.pending, self.rows = io.StringIO(), 0, 0

    def add(self, row: Sequence[object]) -> None:
        self.buffer.write("\t".join(_field(v) for v in row) + "\n")
        self.pending += 1
        if self.pending == self.chunk_rows:
            self.flush()

    def flush(self) -> int:
        """Send what is pending; return the rows sent so far."""
        if self.pending:
            self.buffer.seek(0)
            self.cur.copy_expert(f"COPY {self.table} FROM STDIN", self.buffer)
            self.rows += self.pending
            self.buffer, self.pending = io.StringIO(), 0
        return self.rows


class _Generator:
    """Rows of every table; each table draws from its own seeded ``random.Random``, so tables are independent."""

    def __init__(self, opts: RentalsOptions) -> None:
        self.opts = opts
        self.country_ids = list(range(1, len(COUNTRIES) + 1))
        self.film_rates = {f: RENTAL_RATES[f % 3] for f in range(1, FILMS + 1)}
        self.film_durations = {f: 3 + f % 5 for f in range(1, FILMS + 1)}
        self.inventory_rows = self._inventory()

    def rng(self, table: str) -> random.Random:
        return random.Random(f"{self.opts.seed}:{table}")

    def country(self) -> Iterator[tuple]:
        for country_id, name in enumerate(COUNTRIES, start=1):
            yield country_id, name, UPDATED

    def city(self) -> Iterator[tuple]:
        rnd = self.rng("city")
        weights = [1 / rank for rank in range(1, len(COUNTRIES) + 1)]  # Zipf: a few countries get most cities
        for city_id in range(1, self.opts.cities + 1):
            country_id = rnd.choices(self.country_ids, weights)[0]
            if city_id == self.opts.cities:
                country_id = ORPHAN_OFFSET + 1  # a city of a country the source lost
            yield city_id, f"{rnd.choice(WORDS).title()} {city_id}", country_id, UPDATED

    def address(self) -> Iterator[tuple]:
        """Addresses 1-2 are the stores', 3-4 the staff's, then one per customer."""
        rnd = self.rng("address")
        for address_id in range(1, 2 * STORES + self.opts.customers + 1):
            city_id = rnd.randrange(1, self.opts.cities)  # never the orphan city: its defect is its own
            if address_id == 2 * STORES + self.opts.customers:
                city_id = ORPHAN_OFFSET + 2  # the last customer's address points at no city
            street = f"{address_id} {rnd.choice(WORDS).title()} Way"
            yield address_id, street, None, "District", city_id, "", f"{rnd.randrange(10**9, 10**10)}", UPDATED

    def category(self) -> Iterator[tuple]:
        for category_id, name in enumerate(CATEGORIES, start=1):
            yield category_id, name, UPDATED

    def film(self) -> Iterator[tuple]:
        rnd = self.rng("film")
        for film_id in range(1, FILMS + 1):
            title = f"{rnd.choice(WORDS)} {rnd.choice(WORDS)} {film_id}"
            cost = Decimal(rnd.randrange(999, 2999)) / 100
            yield (
                *(film_id, title, f"A {rnd.choice(WORDS).title()} story", 2006, 1, self.film_durations[film_id]),
                *(self.film_rates[film_id], rnd.randrange(46, 185), cost, rnd.choice(RATINGS), UPDATED),
            )

    def film_category(self) -> Iterator[tuple]:
        rnd = self.rng("film_category")
        for film_id in range(1, FILMS + 1):
            category_id = ORPHAN_OFFSET + 3 if film_id == FILMS else rnd.randrange(1, len(CATEGORIES) + 1)
            yield film_id, category_id, UPDATED
        yield ORPHAN_OFFSET + 4, 1, UPDATED  # a film the source lost

    def store(self) -> Iterator[tuple]:
        for store_id in range(1, STORES + 1):
            yield store_id, store_id, store_id, UPDATED

    def staff(self) -> Iterator[tuple]:
        for staff_id in range(1, STORES + 1):
            first, last = FIRST_NAMES[staff_id], LAST_NAMES[staff_id]
            email = f"{first}.{last}@sakilastaff.com".lower()
            address_id = STORES + staff_id
            yield staff_id, first.title(), last.title(), address_id, email, staff_id, True, first.lower(), UPDATED

    def _inventory(self) -> list[tuple]:
        rnd = self.rng("inventory")
        rows = []
        for inventory_id in range(1, self.opts.inventory + 1):
            film_id = rnd.randrange(1, FILMS + 1)
            if inventory_id % 500 == 23:
                film_id = ORPHAN_OFFSET + 5  # a copy of a film the source lost
            rows.append((inventory_id, film_id, 1 + inventory_id % STORES, UPDATED))
        return rows

    def inventory(self) -> Iterator[tuple]:
        yield from self.inventory_rows

    def customer(self) -> Iterator[tuple]:
        rnd = self.rng("customer")
        for customer_id in range(1, self.opts.customers + 1):
            first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
            address_id = 2 * STORES + customer_id
            if customer_id % 100 == 37:
                address_id = ORPHAN_OFFSET + 6  # an address the source lost
            email = f"{first}.{last}.{customer_id}@sakilacustomer.org".lower()
            created = date(2026, 1, 1) + timedelta(days=rnd.randrange(0, 300))
            store_id = 1 + customer_id % STORES
            yield customer_id, store_id, first, last, email, address_id, True, created, UPDATED, 1

    def rentals_and_payments(self) -> Iterator[tuple[str, tuple]]:
        """(table, row) pairs for rental and payment, day by day, in time order."""
        rnd = self.rng("rental")
        ids = _Counter()
        for day, count in enumerate(self._per_day(rnd)):
            midnight = datetime.combine(self.opts.start + timedelta(days=day), datetime.min.time(), UTC)
            for position, moment in enumerate(self._moments(rnd, midnight, count)):
                yield from self._rental(rnd, ids, position, moment, midnight + timedelta(days=1))

    def _per_day(self, rnd: random.Random) -> list[int]:
        weights = [rnd.uniform(0.8, 1.2) for _ in range(self.opts.days)]
        counts = [int(self.opts.rentals * w / sum(weights)) for w in weights]
        counts[-1] += self.opts.rentals - sum(counts)
        return counts

    def _moments(self, rnd: random.Random, midnight: datetime, count: int) -> list[datetime]:
        hours = rnd.choices(range(24), HOURLY_WEIGHTS, k=count)
        moments = sorted(midnight + timedelta(hours=h, microseconds=rnd.randrange(3_600_000_000)) for h in hours)
        if count >= 2:  # the interval's edges: its first instant belongs to it, the next day's does not
            moments[0], moments[-1] = midnight, midnight + timedelta(days=1, microseconds=-1)
        return moments

    def _rental(self, rnd, ids, position: int, moment: datetime, day_end: datetime) -> Iterator[tuple[str, tuple]]:
        kind = position % self.opts.defect_every
        inventory_id, film_id, store_id, _ = self.inventory_rows[rnd.randrange(len(self.inventory_rows))]
        customer_id = rnd.randrange(1, self.opts.customers + 1)
        kept = timedelta(hours=rnd.randrange(6, 240))
        returned = None if rnd.random() < 0.03 else moment + kept
        if kind == RETURN_BEFORE_RENTAL:
            returned = moment - timedelta(hours=1)
        rental_id = ids.next("rental")
        rental = (
            *(rental_id, moment, ORPHAN_OFFSET + 7 if kind == ORPHAN_INVENTORY else inventory_id),
            *(ORPHAN_OFFSET + 8 if kind == ORPHAN_CUSTOMER else customer_id, returned, store_id),
            returned or moment,
        )
        yield "rental", rental
        if kind == DUPLICATE_RENTAL:
            yield "rental", rental  # re-delivered by the source's change feed
        amount = self.film_rates.get(film_id, RENTAL_RATES[0])
        if returned and kept.days > self.film_durations.get(film_id, 3):
            amount += kept.days - self.film_durations.get(film_id, 3)  # late fee, a dollar a day
        paid = min(moment + timedelta(seconds=rnd.randrange(600)), day_end - timedelta(microseconds=1))
        every = self.opts.pay_on_return_every
        if every and position % every == every - 1 and returned is not None and returned > moment:
            paid = returned
        payment = (
            *(ids.next("payment"), customer_id, store_id),
            *(ORPHAN_OFFSET + rental_id if kind == ORPHAN_RENTAL else rental_id, amount, paid),
        )
        if kind == NEGATIVE_AMOUNT:
            payment = (*payment[:4], -amount, paid)
        yield "payment", payment
        if kind == DUPLICATE_PAYMENT:
            yield "payment", payment


class _Counter:
    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def next(self, name: str) -> int:
        self.last[name] = self.last.get(name, 0) + 1
        return self.last[name]


def create_schema(cur) -> None:
    """Drop and create the twelve tables, without constraints."""
    for table in reversed(TABLES):
        cur.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    for table, columns in TABLES.items():
        cur.execute(f"CREATE TABLE {table} ({columns})")


def add_constraints(cur) -> None:
    """Keys and indexes, then the foreign keys and checks as NOT VALID (existing rows may break them)."""
    for table, columns in PRIMARY_KEYS.items():
        cur.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({columns})")
    for table, column in INDEXES:
        cur.execute(f"CREATE INDEX ON {table} ({column})")
    for table, column, parent in FOREIGN_KEYS:
        cur.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fkey FOREIGN KEY ({column}) "
            f"REFERENCES {parent} NOT VALID"
        )
    for table, name, condition in CHECKS:
        cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")


def generate_rows(opts: RentalsOptions) -> dict[str, list[tuple]]:
    """Every table's rows, in memory, as ``generate_rentals_db`` loads them (for small options: tests)."""
    gen = _Generator(opts)
    rows: dict[str, list[tuple]] = {table: [] for table in TABLES}
    for table in TABLES:
        if table not in ("rental", "payment"):
            rows[table] = list(getattr(gen, table)())
    for table, row in gen.rentals_and_payments():
        rows[table].append(row)
    return rows


def fill(cur, opts: RentalsOptions) -> dict[str, int]:
    """Load every table with COPY; return the rows written per table."""
    gen = _Generator(opts)
    buffers = {table: _CopyBuffer(cur, table, opts.chunk_rows) for table in TABLES}
    for table in TABLES:
        if table not in ("rental", "payment"):
            for row in getattr(gen, table)():
                buffers[table].add(row)
    # Rentals and their payments come from one stream, in time order.
    for table, row in gen.rentals_and_payments():
        buffers[table].add(row)
    return {table: buffer.flush() for table, buffer in buffers.items()}


def is_seeded(cur) -> bool:
    """Whether the database already holds rentals."""
    cur.execute("SELECT to_regclass('public.rental') IS NOT NULL")
    if not cur.fetchone()[0]:
        return False
    cur.execute("SELECT EXISTS (SELECT 1 FROM rental)")
    return bool(cur.fetchone()[0])


def create_database(dsn: str) -> None:
    """Create the DSN's database when missing, through the server's ``postgres`` database."""
    import psycopg2
    from psycopg2 import sql
    from psycopg2.extensions import make_dsn, parse_dsn

    name = parse_dsn(dsn).get("dbname")
    if not name:
        raise ValueError("the DSN names no database (dbname=...)")
    conn = psycopg2.connect(make_dsn(dsn, dbname="postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                logger.info("created database %s", name)
    finally:
        conn.close()


def generate_rentals_db(dsn: str, options: RentalsOptions, *, skip_if_seeded: bool = False) -> dict[str, int]:
    """Create and fill the DVD-rental tables in the database of ``dsn``, in one transaction.

    The same options always give the same rows. Defects (what bronze must refuse) are part of the data: re-delivered
    rental and payment rows, rows whose foreign key points at nothing (a city, an address, a film, a customer,
    a copy, a rental), negative payment amounts and returns before their rental.

    Args:
        dsn: libpq connection string of the target database (the password may come from ``PGPASSWORD``).
        options: size, seed and dates.
        skip_if_seeded: leave a database that already holds rentals as it is.

    Returns:
        Rows written per table (empty when skipped).
    """
    import psycopg2

    if options.rentals < 1 or options.days < 1 or options.defect_every < 50:
        raise ValueError("need rentals >= 1, days >= 1 and defect_every >= 50")
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            if skip_if_seeded and is_seeded(cur):
                logger.info("rentals database already seeded: left as it is")
                return {}
            create_schema(cur)
            counts = fill(cur, options)
            add_constraints(cur)
        with conn.cursor() as cur:
            conn.autocommit = True
            cur.execute("ANALYZE")
    finally:
        conn.close()
    logger.info("rentals database seeded: %s", counts)
    return counts


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m devtools.samples.rentals --dsn DSN --rentals N --seed S``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True, help="libpq DSN of the target database, e.g. 'host=... dbname=...'")
    parser.add_argument("--rentals", type=int, required=True, help="number of rentals (thousands to millions)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start-date", type=date.fromisoformat, default=RentalsOptions.start, help="YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=RentalsOptions.days, help="days the rentals are spread over")
    parser.add_argument("--create-database", action="store_true", help="create the DSN's database when missing")
    parser.add_argument("--skip-if-seeded", action="store_true", help="leave a database that holds rentals alone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.create_database:
        create_database(args.dsn)
    opts = RentalsOptions(rentals=args.rentals, seed=args.seed, start=args.start_date, days=args.days)
    generate_rentals_db(args.dsn, opts, skip_if_seeded=args.skip_if_seeded)


if __name__ == "__main__":
    main()
