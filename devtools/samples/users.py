"""Deterministic RandomUser-compatible users (with malformed and repeated users) and a local API server for them."""

# The server answers `GET /api/?results=N&page=P&seed=S&nat=a,b` the way randomuser.me (API 1.4) does: the same
# parameter rules (last value of a repeated parameter wins, out-of-range results or page fall back to 1, an unknown
# nationality means "any", no seed means a fresh random one) and the same envelope
# `{"results": [...], "info": {"seed", "results", "page", "version"}}`. The users are our own: every one is drawn
# from a random generator seeded by (seed, page, position), so a request always returns the same bytes.
#
# What makes the data useful for a pipeline's tests: a share of the entries is malformed (not an object, no uuid,
# bad email, impossible birth date, bad age, out-of-range coordinates), some entries repeat an earlier user of the
# same or the previous page, and some users come from a fixed population, so another seed (another day) sees the
# same `login.uuid` again with a new address. The server can also answer 429/5xx, slowly, or never successfully.

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import math
import random
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devtools.samples.http_server import serve_until_interrupted, serving

logger = logging.getLogger(__name__)

VERSION = "1.4"
MAX_RESULTS = 5000  # randomuser.me's limit per request
MAX_PAGE = 10000
SECRET_LOGIN_FIELDS = ("password", "salt", "md5", "sha1", "sha256")

# randomuser.me 1.4 nationalities: country, (city, state) pairs, street names, postcode kind, phone pattern.
_NATS: dict[str, tuple[str, tuple[tuple[str, str], ...], tuple[str, ...], str, str]] = {
    "AU": ("Australia", (("Sydney", "New South Wales"), ("Perth", "Western Australia"), ("Hobart", "Tasmania")),
           ("George Street", "Hay Street", "Queen Street"), "int4", "0#-####-####"),
    "BR": ("Brazil", (("Curitiba", "Paraná"), ("Recife", "Pernambuco"), ("Santos", "São Paulo")),
           ("Rua Três", "Rua da Paz", "Avenida Brasil"), "int5", "(##) ####-####"),
    "CA": ("Canada", (("Toronto", "Ontario"), ("Halifax", "Nova Scotia"), ("Victoria", "British Columbia")),
           ("Maple Ave", "King St", "Dufferin St"), "ca", "###-###-####"),
    "CH": ("Switzerland", (("Basel", "Basel-Stadt"), ("Genève", "Genève"), ("Bern", "Bern")),
           ("Rue de la Gare", "Bahnhofstrasse", "Kirchweg"), "int4", "07# ### ## ##"),
    "DE": ("Germany", (("Leipzig", "Sachsen"), ("Köln", "Nordrhein-Westfalen"), ("Ulm", "Baden-Württemberg")),
           ("Schulstraße", "Gartenstraße", "Mühlenweg"), "int5", "0###-#######"),
    "DK": ("Denmark", (("Aarhus", "Midtjylland"), ("Odense", "Syddanmark"), ("Roskilde", "Sjælland")),
           ("Vestergade", "Skovvej", "Østergade"), "int4", "########"),
    "ES": ("Spain", (("Valencia", "Comunidad Valenciana"), ("Bilbao", "País Vasco"), ("Sevilla", "Andalucía")),
           ("Calle Mayor", "Calle de Alcalá", "Avenida del Puerto"), "int5", "9##-###-###"),
    "FI": ("Finland", (("Tampere", "Pirkanmaa"), ("Oulu", "Northern Ostrobothnia"), ("Espoo", "Uusimaa")),
           ("Hämeenkatu", "Pispalan Valtatie", "Esplanadi"), "int5", "0#-###-###"),
    "FR": ("France", (("Lyon", "Rhône"), ("Nantes", "Loire-Atlantique"), ("Lille", "Nord")),
           ("Rue de la République", "Rue Pasteur", "Avenue Jean-Jaurès"), "int5", "0#-##-##-##-##"),
    "GB": ("United Kingdom", (("Leeds", "West Yorkshire"), ("Bristol", "Avon"), ("York", "North Yorkshire")),
           ("High Street", "Church Lane", "Mill Road"), "gb", "0####-######"),
    "IE": ("Ireland", (("Cork", "Cork"), ("Galway", "Galway"), ("Limerick", "Limerick")),
           ("Main Street", "Station Road", "Green Lane"), "int4", "0##-###-####"),
    "IN": ("India", (("Pune", "Maharashtra"), ("Jaipur", "Rajasthan"), ("Kochi", "Kerala")),
           ("MG Road", "Park Street", "Linking Road"), "int6", "##########"),
    "IR": ("Iran", (("Tabriz", "East Azerbaijan"), ("Shiraz", "Fars"), ("Rasht", "Gilan")),
           ("Azadi", "Enghelab", "Valiasr"), "int5", "0##-########"),
    "MX": ("Mexico", (("Puebla", "Puebla"), ("Mérida", "Yucatán"), ("León", "Guanajuato")),
           ("Avenida Juárez", "Calle Hidalgo", "Calle Morelos"), "int5", "(6##) ### ####"),
    "NL": ("Netherlands", (("Utrecht", "Utrecht"), ("Delft", "Zuid-Holland"), ("Groningen", "Groningen")),
           ("Kerkstraat", "Dorpsstraat", "Molenweg"), "nl", "(0##) #######"),
    "NO": ("Norway", (("Bergen", "Vestland"), ("Tromsø", "Troms"), ("Bodø", "Nordland")),
           ("Storgata", "Kirkeveien", "Skolegata"), "int4", "########"),
    "NZ": ("New Zealand", (("Dunedin", "Otago"), ("Napier", "Hawke'S Bay"), ("Nelson", "Tasman")),
           ("Cuba Street", "Queen Street", "Victoria Street"), "int4", "(###)-###-####"),
    "RS": ("Serbia", (("Niš", "Nišava"), ("Novi Sad", "South Bačka"), ("Subotica", "North Bačka")),
           ("Kneza Miloša", "Bulevar oslobođenja", "Cara Dušana"), "int5", "0##-####-###"),
    "TR": ("Turkey", (("İzmir", "İzmir"), ("Bursa", "Bursa"), ("Konya", "Konya")),
           ("Atatürk Cd", "Bağdat Cd", "Istiklal Cd"), "int5", "(###)-###-####"),
    "UA": ("Ukraine", (("Lviv", "Lvivska"), ("Odesa", "Odeska"), ("Poltava", "Poltavska")),
           ("Shevchenka", "Khreshchatyk", "Sadova"), "int5", "(0##) ###-####"),
    "US": ("United States", (("Austin", "Texas"), ("Denver", "Colorado"), ("Portland", "Oregon")),
           ("Valwood Pkwy", "Oak Lawn Ave", "Pecan Acres Ln"), "int5", "(###) ###-####"),
}  # fmt: skip
NATIONALITIES: tuple[str, ...] = tuple(sorted(_NATS))
ID_NAMES = {"US": "SSN", "GB": "NINO", "FR": "INSEE", "NL": "BSN", "AU": "TFN", "CA": "SIN", "DK": "CPR"}
FIRST_NAMES = {
    "female": ("Jennie", "Zoé", "Amelia", "Sofia", "Noor", "Ingrid", "Laura", "Aino", "Maya", "Chloe", "Isabel",
               "Hanna", "Emma", "Léa", "Olivia", "Nora", "Freya", "Clara", "Ana", "Priya"),
    "male": ("Liam", "Jérôme", "Noah", "Mateo", "Arjun", "Lars", "Jack", "Eero", "Luca", "Oscar", "Hugo", "Felix",
             "Elias", "Omar", "Tomás", "Finn", "Leon", "Ravi", "Milan", "Kai"),
}  # fmt: skip
LAST_NAMES = (
    "Nichols", "Müller", "García", "Dubois", "Jensen", "Virtanen", "Smith", "Rossi", "Kumar", "Novak", "Silva",
    "Hansen", "Brown", "Martin", "Öztürk", "Jovanović", "Walsh", "Moreau", "de Vries", "Taylor", "Khan", "Berg",
)  # fmt: skip
USER_WORDS = (("yellow", "blue", "happy", "silver", "tiny", "lazy", "crazy"), ("peacock", "tiger", "koala", "swan"))
PASSWORDS = ("addison", "sunshine", "qwerty", "dragon", "monkey", "letmein", "trustno1", "shadow", "master", "hunter")
TIMEZONES = (
    ("-10:00", "Hawaii"), ("-5:00", "Eastern Time (US & Canada), Bogota, Lima"), ("-3:00", "Brazil, Buenos Aires"),
    ("0:00", "Western Europe Time, London, Lisbon, Casablanca"), ("+1:00", "Brussels, Copenhagen, Madrid, Paris"),
    ("+2:00", "Kaliningrad, South Africa"), ("+3:30", "Tehran"), ("+5:30", "Bombay, Calcutta, Madras, New Delhi"),
    ("+9:30", "Adelaide, Darwin"), ("+12:00", "Auckland, Wellington, Fiji, Kamchatka"),
)  # fmt: skip
_DOB_MS = (-800_000_000_000, 1_569_449_450_000 - 86_400_000 * 365 * 21)  # randomuser's range: born 1944..1998
_REGISTERED_MS = (1_016_688_461_000, 1_569_449_450_000)  # registered 2002..2019
# Defects, each turning a user into an entry bronze must refuse; `duplicate` entries repeat an earlier user.
DEFECTS = ("not_an_object", "missing_user_id", "bad_email", "bad_date_of_birth", "bad_age", "bad_coordinates")


@dataclass(frozen=True)
class UserOptions:
    """What the generated users look like.

    Attributes:
        bad_ratio: share of entries with one of ``DEFECTS``.
        duplicate_ratio: share of entries that repeat an earlier entry (same page, or the previous page of the
            same size) byte for byte.
        returning_ratio: share of users drawn from a fixed population (same uuid, name, birth date and login
            whatever the seed; a new address and phone per seed), so later days see them again.
        population: size of that population.
        population_seed: seed of the population.
        reference_date: ages (``dob.age``, ``registered.age``) are years between that date's year and the event's,
            as randomuser.me counts them against the current year; fixed here so responses never change.
    """

    bad_ratio: float = 0.03
    duplicate_ratio: float = 0.03
    returning_ratio: float = 0.1
    population: int = 500
    population_seed: str = "lakehouse-population"
    reference_date: date = date(2026, 11, 1)

    def __post_init__(self) -> None:
        ratios = (self.bad_ratio, self.duplicate_ratio, self.returning_ratio)
        if min(ratios) < 0 or max(ratios) > 1:
            raise ValueError(f"ratios must be within [0, 1], got {ratios}")
        if self.population < 1:
            raise ValueError(f"population must be >= 1, got {self.population}")


# --- request parameters, as randomuser.me reads them --------------------------------------------------


@dataclass(frozen=True)
class UserRequest:
    """The effective parameters of one request once randomuser.me's rules are applied.

    Attributes:
        seed: the seed the users are drawn from (as echoed in ``info.seed``, minus a nationality suffix).
        page: page number, 1..10000.
        results: number of entries, 0..5000.
        nats: nationalities to draw from (all of them when the request named none or an unknown one).
        gender: ``male``/``female`` filter; randomuser.me ignores it when a seed is given.
        info_seed: ``info.seed`` of the response.
    """

    seed: str
    page: int
    results: int
    nats: tuple[str, ...] = NATIONALITIES
    gender: str | None = None
    info_seed: str = ""

    @classmethod
    def of(
        cls, seed: str, page: int = 1, results: int = 1, nat: str | None = None, gender: str | None = None
    ) -> UserRequest:
        """Parameters given as values (what a client sends), normalised like the server does."""
        query = {"seed": [seed], "page": [str(page)], "results": [str(results)]}
        if nat is not None:
            query["nat"] = [nat]
        if gender is not None:
            query["gender"] = [gender]
        return cls.from_query(query)

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]], rng: random.Random | None = None) -> UserRequest:
        """Apply randomuser.me's rules to a parsed query string (``parse_qs(..., keep_blank_values=True)``)."""
        last = {key: values[-1] for key, values in query.items() if values}
        results = _js_number(last.get("results"))
        if math.isnan(results) or results < 0 or results > MAX_RESULTS:
            results = 1
        page = _js_number(last.get("page"))
        page = 1 if math.isnan(page) or page <= 0 or page > MAX_PAGE else page
        seed = last.get("seed", "")
        if seed == "":
            seed = "".join((rng or random.SystemRandom()).choice("abcdef1234567890") for _ in range(16))
        nats = _nationalities(last.get("nat") or last.get("nationality"))
        info_seed = seed
        suffix = seed[16:] if len(seed) == 18 else ""
        if suffix and all(c in "0123456789abcdefABCDEF" for c in suffix) and int(suffix, 16) < len(NATIONALITIES):
            # An 18-character seed is a 16-character seed plus the hex index of a single nationality.
            nats, seed = (NATIONALITIES[int(suffix, 16)],), seed[:16]
        gender = last.get("gender") if last.get("gender") in ("male", "female") and not last.get("seed") else None
        return cls(seed, _integral(page), _integral(results), nats, gender, info_seed)

    @property
    def count(self) -> int:
        """Entries in the response (a fractional ``results`` rounds up, as randomuser.me's loop does)."""
        return math.ceil(self.results)


def _js_number(text: str | None) -> float:
    """JavaScript's ``Number(text)`` for the forms a query string holds (missing -> NaN, blank -> 0)."""
    if text is None:
        return math.nan
    text = text.strip()
    if text == "":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def _integral(value: float) -> Any:
    return int(value) if float(value).is_integer() else value


def _nationalities(text: str | None) -> tuple[str, ...]:
    if not text:
        return NATIONALITIES
    codes = tuple(c.upper() for c in text.split(",") if c != "")
    return codes if codes and all(c in _NATS for c in codes) else NATIONALITIES


# --- generator -----------------------------------------------------------------------------------------


def users_page(
    seed: str, page: int = 1, results: int = 1, nat: str | None = None, options: UserOptions | None = None
) -> list[Any]:
    """The exact ``results`` entries the server returns for ``?results=&page=&seed=&nat=``.

    Args:
        seed: the ``seed`` parameter.
        page: the ``page`` parameter.
        results: the ``results`` parameter.
        nat: the ``nat`` parameter, e.g. ``"us,gb"``.
        options: the generator options of the server.

    Returns:
        The entries, mostly user documents (dicts), some malformed ones (see ``DEFECTS``).
    """
    return generate(UserRequest.of(seed, page, results, nat), options)


def response_body(request: UserRequest, options: UserOptions | None = None) -> bytes:
    """The response body for ``request``, byte for byte: compact JSON, UTF-8, like randomuser.me's."""
    document = {
        "results": generate(request, options),
        "info": {"seed": request.info_seed, "results": request.results, "page": request.page, "version": VERSION},
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def page_body(
    seed: str, page: int = 1, results: int = 1, nat: str | None = None, options: UserOptions | None = None
) -> bytes:
    """``response_body`` for parameters given as values: the bytes a client lands for that request."""
    return response_body(UserRequest.of(seed, page, results, nat), options)


def generate(request: UserRequest, options: UserOptions | None = None) -> list[Any]:
    """Every entry of a response to ``request``."""
    opts = options or UserOptions()
    return [_entry(request, opts, request.page, i) for i in range(request.count)]


def _entry(request: UserRequest, opts: UserOptions, page: int, index: int) -> Any:
    """Entry ``index`` of ``page``: a repeat of an earlier entry, or a new user, maybe with a defect."""
    rng = random.Random(f"{_page_key(request, page)}|{index}")
    earlier = _earlier_position(rng, opts, page, index, request.count)
    if earlier is not None:
        return copy.deepcopy(_entry(request, opts, *earlier))
    user = _user(rng, request, opts)
    if rng.random() < opts.bad_ratio:
        return _with_defect(rng, user)
    return user


def _page_key(request: UserRequest, page: int) -> str:
    """randomuser.me seeds page 1 with the seed and page P with the seed followed by P."""
    return request.seed if page == 1 else f"{request.seed}{page}"


def _earlier_position(rng: random.Random, opts: UserOptions, page: int, index: int, size: int) -> tuple | None:
    """Where a repeated entry comes from: an earlier position of this page or any of the previous page."""
    if rng.random() >= opts.duplicate_ratio or (page == 1 and index == 0):
        return None
    if page > 1 and (index == 0 or rng.random() < 0.5):
        return page - 1, rng.randrange(size)
    return page, rng.randrange(index)


def _user(rng: random.Random, request: UserRequest, opts: UserOptions) -> dict[str, Any]:
    """A valid randomuser.me 1.4 user document."""
    if request.gender is None and rng.random() < opts.returning_ratio:
        member = rng.randrange(opts.population)
        identity = _identity(random.Random(f"{opts.population_seed}|member|{member}"), request, opts)
    else:
        identity = _identity(rng, request, opts)
    nat = identity["nat"]
    country, places, streets, postcode_kind, phone = _NATS[nat]
    city, state = rng.choice(places)
    offset, description = rng.choice(TIMEZONES)
    return {
        "gender": identity["gender"],
        "name": identity["name"],
        "location": {
            "street": {"number": rng.randint(1, 9999), "name": rng.choice(streets)},
            "city": city,
            "state": state,
            "country": country,
            "postcode": _postcode(rng, postcode_kind),
            "coordinates": {"latitude": f"{rng.uniform(-90, 90):.4f}", "longitude": f"{rng.uniform(-180, 180):.4f}"},
            "timezone": {"offset": offset, "description": description},
        },
        "email": identity["email"],
        "login": identity["login"],
        "dob": identity["dob"],
        "registered": identity["registered"],
        "phone": _digits(rng, phone),
        "cell": _digits(rng, phone),
        "id": identity["id"],
        "picture": identity["picture"],
        "nat": nat,
    }


def _identity(rng: random.Random, request: UserRequest, opts: UserOptions) -> dict[str, Any]:
    """What stays the same when a population member is seen again: name, login, birth, registration, picture."""
    nat = rng.choice(request.nats)
    gender = request.gender or rng.choice(("male", "female"))
    first, last = rng.choice(FIRST_NAMES[gender]), rng.choice(LAST_NAMES)
    title = "Mr" if gender == "male" else rng.choice(("Miss", "Ms", "Mrs", "Madame"))
    password = rng.choice(PASSWORDS)
    salt = "".join(rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGH0123456789") for _ in range(8))
    salted = (password + salt).encode("utf-8")
    login = {
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "username": rng.choice(USER_WORDS[0]) + rng.choice(USER_WORDS[1]) + str(rng.randint(100, 999)),
        "password": password,
        "salt": salt,
        "md5": hashlib.md5(salted).hexdigest(),  # noqa: S324 - randomuser.me's field, not a security use
        "sha1": hashlib.sha1(salted).hexdigest(),  # noqa: S324 - ditto
        "sha256": hashlib.sha256(salted).hexdigest(),
    }
    portrait = rng.randint(0, 99 if gender == "male" else 96)
    folder = "men" if gender == "male" else "women"
    base = "https://randomuser.me/api/portraits/"
    return {
        "nat": nat,
        "gender": gender,
        "name": {"title": title, "first": first, "last": last},
        "email": f"{_ascii(first)}.{_ascii(last)}@example.com",
        "login": login,
        "dob": _moment(rng, _DOB_MS, opts.reference_date),
        "registered": _moment(rng, _REGISTERED_MS, opts.reference_date),
        "id": {"name": ID_NAMES.get(nat, ""), "value": _digits(rng, "###-##-####") if nat in ID_NAMES else None},
        "picture": {
            "large": f"{base}{folder}/{portrait}.jpg",
            "medium": f"{base}med/{folder}/{portrait}.jpg",
            "thumbnail": f"{base}thumb/{folder}/{portrait}.jpg",
        },
    }


def _moment(rng: random.Random, bounds: tuple[int, int], reference: date) -> dict[str, Any]:
    ms = rng.randint(*bounds)
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return {"date": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z", "age": reference.year - moment.year}


def _ascii(text: str) -> str:
    """Transliterate for an email address, as randomuser.me does: drop accents and spaces, lower-case."""
    decomposed = unicodedata.normalize("NFKD", text.replace("ø", "o").replace("ß", "ss"))
    return "".join(c for c in decomposed if c.isascii() and not c.isspace()).lower()


def _digits(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randint(0, 9)) if c == "#" else c for c in pattern)


def _postcode(rng: random.Random, kind: str) -> int | str:
    """An integer for most nationalities, a string where the format has letters (as randomuser.me mixes them)."""
    if kind.startswith("int"):
        width = int(kind[3:])
        return rng.randint(10 ** (width - 1), 10**width - 1)
    pattern = {"gb": "A## #AA", "ca": "A#A #A#"}.get(kind, "#### AA")  # else Dutch
    return "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") if c == "A" else c for c in _digits(rng, pattern))


def _with_defect(rng: random.Random, user: dict[str, Any]) -> Any:
    """The user with one defect of ``DEFECTS`` (the secrets stay in, as a real feed would keep them)."""
    kind = rng.choice(DEFECTS)
    if kind == "not_an_object":
        return rng.choice(("user unavailable", None, 42, [user["login"]["uuid"], user["email"]]))
    if kind == "missing_user_id":
        if rng.random() < 0.5:
            del user["login"]["uuid"]
        else:
            user["login"]["uuid"] = ""
    elif kind == "bad_email":
        user["email"] = rng.choice((user["email"].replace("@", "."), user["email"].split("@")[0] + "@", ""))
    elif kind == "bad_date_of_birth":
        user["dob"]["date"] = rng.choice(("1985-02-30T10:00:00.000Z", "not a date", "2990-01-01T00:00:00.000Z"))
    elif kind == "bad_age":
        user["dob"]["age"] = rng.choice((-3, "forty", 212))
    else:
        coordinates = user["location"]["coordinates"]
        axis, bad = rng.choice((("latitude", "123.4567"), ("longitude", "-200.1234"), ("latitude", "n/a")))
        coordinates[axis] = bad
    return user


# --- server ----------------------------------------------------------------------------------------


@dataclass
class Faults:
    """Failures the server injects, per page number (whatever the seed).

    Attributes:
        errors: page -> statuses of its first responses, in order (e.g. ``{2: [429, 500]}``); then it succeeds.
        every_page: statuses of the first responses of the pages ``errors`` does not name.
        retry_after: ``Retry-After`` header sent with 429 and 503 responses (None: no header).
        slow: page -> how many of its responses (after the ``errors``) wait ``slow_s`` before answering.
        slow_s: the delay of a slow response, in seconds.
        broken: page -> the status it always answers: a page that is never OK.
        invalid: page -> a 200 response that is not what was asked, every time: ``not_json``, ``not_object``,
            ``short`` (one entry missing), ``wrong_page``, ``wrong_seed``, ``no_results``.
    """

    errors: Mapping[int, Sequence[int]] = field(default_factory=dict)
    every_page: Sequence[int] = ()
    retry_after: str | None = "1"
    slow: Mapping[int, int] = field(default_factory=dict)
    slow_s: float = 2.0
    broken: Mapping[int, int] = field(default_factory=dict)
    invalid: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServedRequest:
    """One request the server answered: its page, query string and status."""

    page: int
    query: str
    status: int


_ERROR_BODY = {
    429: {"error": "Too many requests, slow down"},
    500: {"error": "Uh oh, something has gone wrong. Please tweet us @randomapi about the issue. Thank you."},
}


class RandomUserHandler(BaseHTTPRequestHandler):
    """Answers ``/api/`` (and ``/api/<version>/``) like randomuser.me, with the server's faults injected."""

    protocol_version = "HTTP/1.1"
    server: _UserServer

    def do_GET(self) -> None:  # noqa: N802 - name required by BaseHTTPRequestHandler
        parts = urlsplit(self.path)
        if not (parts.path == "/api" or parts.path.startswith("/api/")):
            self._send_json(404, {"error": f"no such path {parts.path}"})
            return
        request = UserRequest.from_query(parse_qs(parts.query, keep_blank_values=True))
        status, body, headers = self.server.answer(request)
        try:
            self._send(status, body, headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test)
        self.server.record(ServedRequest(request.page, parts.query, status))

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode("utf-8"), {})

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        logger.debug("%s - %s", self.address_string(), format % args)


class _UserServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], options: UserOptions, faults: Faults, log: list | None) -> None:
        super().__init__(address, RandomUserHandler)
        self.options, self.faults, self.log = options, faults, log
        self.attempts: dict[int, int] = {}
        self.lock = threading.Lock()

    def record(self, served: ServedRequest) -> None:
        if self.log is not None:
            with self.lock:
                self.log.append(served)

    def answer(self, request: UserRequest) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, extra headers) for ``request``, counting the page's attempts for the faults."""
        with self.lock:
            attempt = self.attempts.get(request.page, 0)
            self.attempts[request.page] = attempt + 1
        faults = self.faults
        errors = list(faults.errors.get(request.page, faults.every_page))
        status = faults.broken.get(request.page) or (errors[attempt] if attempt < len(errors) else None)
        if status is not None:
            headers = {"Retry-After": faults.retry_after} if status in (429, 503) and faults.retry_after else {}
            body = json.dumps(_ERROR_BODY.get(status, {"error": HTTPStatus(status).phrase})).encode("utf-8")
            return status, body, headers
        if attempt - len(errors) < faults.slow.get(request.page, 0):
            time.sleep(faults.slow_s)
        kind = faults.invalid.get(request.page)
        body = _invalid_body(request, self.options, kind) if kind else response_body(request, self.options)
        return 200, body, {}


def _invalid_body(request: UserRequest, options: UserOptions, kind: str) -> bytes:
    """A 200 response that does not answer the request as asked."""
    if kind == "not_json":
        return b"<html><body>Service temporarily unavailable</body></html>"
    if kind == "not_object":
        return b"[]"
    document = json.loads(response_body(request, options))
    if kind == "short":
        document["results"] = document["results"][:-1]
    elif kind == "wrong_page":
        document["info"]["page"] = request.page + 1
    elif kind == "wrong_seed":
        document["info"]["seed"] = "0123456789abcdef"
    elif kind == "no_results":
        del document["results"]
    else:
        raise ValueError(f"unknown invalid response kind {kind!r}")
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@contextmanager
def serve_users(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    options: UserOptions | None = None,
    faults: Faults | None = None,
    log: list[ServedRequest] | None = None,
) -> Iterator[str]:
    """Serve the RandomUser-compatible API in a background thread for the duration of the block.

    Args:
        host: address to bind.
        port: port to bind; 0 picks a free one.
        options: the generator's options (``users_page`` with the same options returns what it serves).
        faults: failures to inject.
        log: a list the server appends a ``ServedRequest`` to for every answer.

    Yields:
        The API's base URL, e.g. ``http://127.0.0.1:54321/api/``.
    """
    server = _UserServer((host, port), options or UserOptions(), faults or Faults(), log)
    with serving(server, "serve-users", "/api/") as url:
        yield url


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m devtools.samples.users --port 8099`` serves the API until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--bad-ratio", type=float, default=UserOptions.bad_ratio)
    parser.add_argument("--duplicate-ratio", type=float, default=UserOptions.duplicate_ratio)
    parser.add_argument("--returning-ratio", type=float, default=UserOptions.returning_ratio)
    parser.add_argument("--fail-first", type=int, default=0, help="answer each page's first N requests with an error")
    parser.add_argument("--fail-status", type=int, default=429, help="status of those errors")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options = UserOptions(args.bad_ratio, args.duplicate_ratio, args.returning_ratio)
    faults = Faults(every_page=[args.fail_status] * args.fail_first)
    serve_until_interrupted(_UserServer((args.host, args.port), options, faults, None), "a RandomUser API at ", "/api/")


if __name__ == "__main__":
    main()
