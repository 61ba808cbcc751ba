#!/usr/bin/env python3
"""A loopback simulator of the public APIs the connectors call, for the test suite and the benchmarks.

It holds N deterministic records (record i is created at 2026-01-01T00:00:00Z + 37*i s), serves them in
the wire shapes of the real services, honours the time window each connector sends (a window returns only
its records, and the totals count only them, as the real APIs do) and injects the faults real services show.
Query text is not matched: every record matches any query. Standard library only, so it runs as
``python -m tests.support.apisim`` and as ``python tests/support/apisim.py``.

Routes (page sizes as the client asks, capped at each API's maximum):
  GET /hn/api/v1/search            Algolia HN: page, hitsPerPage (<= 1000), numericFilters on created_at_i
  GET /hn/api/v1/search_by_date      ("created_at_i>=A,created_at_i<B"; >, >=, <, <=, =, "created_at_i:A TO B");
                                     search_by_date lists newest first
  GET /github/search/issues        q with created:A..B, created:>=A, >A, <=B, <B (a date is a whole day, a
                                     datetime one second; ranges include both ends), page, per_page (<= 100), Link
  GET /arxiv/api/query             search_query with submittedDate:[YYYYMMDDHHMM TO YYYYMMDDHHMM] (both ends
                                     included), start, max_results (<= 2000); an Atom feed
  GET /stripe/v1/customers         created[gte], created[gt], created[lte], created[lt] or created=T, limit
                                     (<= 100), starting_after; newest first
  GET /_truth/<source>?since=E&until=E  count and sha256 of the sorted ids (hn, github, arxiv, stripe) created
                                     in [since, until) (epoch seconds, both optional)
  GET /_stats                      API requests served and faults injected (the /_ routes are not counted)

Faults (one roll per API request, from --seed):
  --latency-ms L        added to every API response
  --fail-rate F         this share of requests gets 503
  --ratelimit-every K   every K-th request gets 429 with Retry-After: --retry-after (default 1)
  --hang-rate H         this share sleeps --hang-s seconds before answering
  --garbage-rate G      this share gets 200 with the body cut in half
Run: python -m tests.support.apisim --port 8765 --records 20000 --latency-ms 10
(--port 0 picks a free port; the first line printed is "apisim listening on http://HOST:PORT ...").
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.sax.saxutils import escape

BASE_TS = 1_767_225_600  # 2026-01-01T00:00:00Z: record 0
STEP_S = 37  # record i is created at BASE_TS + i * STEP_S
LOOPBACK = ("127.0.0.1", "localhost", "::1")
VOCABULARY = (
    "rate", "limiting", "circuit", "breaker", "retry", "backoff", "provenance", "evidence", "claim", "debate",
    "connector", "cache", "latency", "throughput", "duckdb", "dagster", "partition", "freshness", "lineage", "schema",
    "api", "token", "webhook", "payment", "incident", "contact", "envelope", "signature", "arxiv", "wikipedia",
    "github", "hacker", "news", "reddit",
)
EXT_IDS: dict[str, Callable[[int], str]] = {
    "hn": lambda i: str(40_000_000 + i),
    "github": lambda i: f"https://github.com/acme/repo/issues/{i + 1}",
    "arxiv": lambda i: f"http://arxiv.org/abs/2601.{i:05d}v1",
    "stripe": lambda i: f"cus_{i:014d}",
}
JSON = "application/json"

Bounds = tuple[int | None, int | None]  # creation times [lo, hi) in whole epoch seconds; None is open
OPEN: Bounds = (None, None)


class BadRequest(ValueError):
    """A request the real API would refuse; answered with ``status`` and the message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Reply(NamedTuple):
    """One HTTP answer."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = {}  # never mutated


def json_reply(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """``body`` as compact JSON."""
    return Reply(status, json.dumps(body, separators=(",", ":")).encode(), JSON, headers or {})


# --- records ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1 << 15)
def record(i: int) -> dict[str, Any]:
    """Record ``i``: words drawn from its own seed, created at BASE_TS + i * STEP_S (shared: do not mutate)."""
    rnd = random.Random(i)
    words = rnd.choices(VOCABULARY, k=126)
    return {"title": " ".join(words[:6]).capitalize(), "body": " ".join(words[6:]), "ts": BASE_TS + i * STEP_S,
            "author": f"user{rnd.randrange(500)}", "points": rnd.randrange(1000)}


def iso(ts: int) -> str:
    """Epoch seconds as ISO 8601 UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# --- time windows ----------------------------------------------------------------------------------------

def narrow(bounds: Bounds, lo: int | None = None, hi: int | None = None) -> Bounds:
    """``bounds`` intersected with [lo, hi)."""
    los = [x for x in (bounds[0], lo) if x is not None]
    his = [x for x in (bounds[1], hi) if x is not None]
    return (max(los) if los else None, min(his) if his else None)


def compare(bounds: Bounds, op: str, span: tuple[int, int]) -> Bounds:
    """``bounds`` narrowed by ``created <op> value``, where the value covers the seconds [start, end)."""
    start, end = span
    match op:
        case ">=":
            return narrow(bounds, lo=start)
        case ">":
            return narrow(bounds, lo=end)
        case "<=":
            return narrow(bounds, hi=end)
        case "<":
            return narrow(bounds, hi=start)
        case "=":
            return narrow(bounds, start, end)
    raise BadRequest(f"unsupported comparison {op!r}")


def number_span(value: float) -> tuple[int, int]:
    """The whole seconds equal to ``value`` (one, or none when it has a fraction)."""
    return math.ceil(value), math.floor(value) + 1


def indices(records: int, bounds: Bounds) -> range:
    """The records created in ``bounds``: one run of indices, since creation time grows with the index."""
    lo, hi = bounds
    start = 0 if lo is None else min(records, max(0, -(-(lo - BASE_TS) // STEP_S)))
    stop = records if hi is None else min(records, max(start, -(-(hi - BASE_TS) // STEP_S)))
    return range(start, stop)


_NUMBER = r"-?\d+(?:\.\d+)?"
_HN_FILTER = re.compile(
    rf"\s*(?P<attr>\w+)\s*(?:(?P<op><=|>=|!=|<|>|=)\s*(?P<value>{_NUMBER})|:\s*(?P<lo>{_NUMBER})\s+TO\s+"
    rf"(?P<hi>{_NUMBER}))\s*"
)


def hn_window(numeric_filters: str) -> Bounds:
    """Algolia ``numericFilters`` (comma-separated, all must hold) on ``created_at_i`` as bounds."""
    bounds = OPEN
    for part in numeric_filters.split(","):
        if not part.strip():
            continue
        found = _HN_FILTER.fullmatch(part)
        if not found:
            raise BadRequest(f"numericFilters: cannot parse {part!r}")
        if found["attr"] != "created_at_i":
            raise BadRequest(f"numericFilters: the simulator filters created_at_i only, not {found['attr']!r}")
        if found["op"] == "!=":
            raise BadRequest("numericFilters: != is not simulated")
        if found["op"]:
            bounds = compare(bounds, found["op"], number_span(float(found["value"])))
        else:
            bounds = compare(bounds, ">=", number_span(float(found["lo"])))
            bounds = compare(bounds, "<=", number_span(float(found["hi"])))
    return bounds


_GH_CREATED = re.compile(r"(?:^|\s)created:(\S+)")
_GH_COMPARISON = re.compile(r"(>=|<=|>|<)?(.+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def github_span(text: str) -> tuple[int, int]:
    """The seconds a GitHub ``created:`` value covers: a date its whole UTC day, a datetime its second."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"created: {text!r} is neither a YYYY-MM-DD date nor an ISO 8601 datetime", 422) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    start = math.floor(moment.timestamp())
    return start, start + (86_400 if _DATE.fullmatch(text) else 1)


def github_window(q: str) -> Bounds:
    """Every ``created:`` qualifier of a GitHub search ``q`` as bounds (ranges include both ends)."""
    bounds = OPEN
    for value in _GH_CREATED.findall(q):
        if ".." in value:
            first, _, last = value.partition("..")
            if first != "*":
                bounds = compare(bounds, ">=", github_span(first))
            if last != "*":
                bounds = compare(bounds, "<=", github_span(last))
        else:
            op, text = _GH_COMPARISON.fullmatch(value).groups()  # type: ignore[union-attr]  (.+ always matches)
            bounds = compare(bounds, op or "=", github_span(text))
    return bounds


_ARXIV_FIELD = re.compile(r"(?:submittedDate|lastUpdatedDate):")
_ARXIV_RANGE = re.compile(r"(?:submittedDate|lastUpdatedDate):\[\s*(\d+)\s+TO\s+(\d+)\s*\]")
_ARXIV_FORMATS = {8: ("%Y%m%d", 86_400), 12: ("%Y%m%d%H%M", 60), 14: ("%Y%m%d%H%M%S", 1)}


def arxiv_span(text: str) -> tuple[int, int]:
    """The seconds an arXiv date (YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, UTC) covers."""
    try:
        fmt, unit = _ARXIV_FORMATS[len(text)]
        start = int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp())
    except (KeyError, ValueError):
        raise BadRequest(f"search_query: {text!r} is not a YYYYMMDDHHMM date") from None
    return start, start + unit


def arxiv_window(search_query: str) -> Bounds:
    """Every ``submittedDate:[A TO B]`` of an arXiv ``search_query`` as bounds (both ends included)."""
    ranges = _ARXIV_RANGE.findall(search_query)
    if len(ranges) != len(_ARXIV_FIELD.findall(search_query)):
        raise BadRequest("search_query: a date field needs the form submittedDate:[YYYYMMDDHHMM TO YYYYMMDDHHMM]")
    bounds = OPEN
    for first, last in ranges:
        bounds = compare(compare(bounds, ">=", arxiv_span(first)), "<=", arxiv_span(last))
    return bounds


_STRIPE_CREATED = {"created": "=", "created[gte]": ">=", "created[gt]": ">", "created[lte]": "<=", "created[lt]": "<"}


def stripe_window(query: dict[str, str]) -> Bounds:
    """Stripe's ``created`` list filters as bounds."""
    bounds = OPEN
    for key, op in _STRIPE_CREATED.items():
        if key in query:
            if not re.fullmatch(r"-?\d+", query[key]):
                raise BadRequest(f"Invalid integer: {query[key]} (parameter {key})")
            bounds = compare(bounds, op, number_span(int(query[key])))
    return bounds


def integer(query: dict[str, str], name: str, default: int, lo: int, hi: int | None = None) -> int:
    """Parameter ``name`` as an integer, capped to [lo, hi]; anything else is a bad request."""
    text = query.get(name)
    if text is None or text == "":
        return default
    if not re.fullmatch(r"-?\d+", text):
        raise BadRequest(f"{name} must be an integer, got {text!r}")
    value = max(lo, int(text))
    return value if hi is None else min(hi, value)


# --- the simulator ---------------------------------------------------------------------------------------

class Simulator:
    """The records, the fault settings and the counters a server shares across its threads."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.records: int = options.records
        self.options = options
        self._lock = threading.Lock()
        self._rnd = random.Random(options.seed)
        self.requests = 0
        self.faults = dict.fromkeys(("fail", "ratelimit", "hang", "garbage"), 0)

    def draw(self) -> str | None:
        """Count one API request and pick its fault: None or a key of ``faults``."""
        o = self.options
        with self._lock:
            self.requests += 1
            roll = self._rnd.random()
            if o.ratelimit_every and self.requests % o.ratelimit_every == 0:
                fault: str | None = "ratelimit"
            elif roll < o.fail_rate:
                fault = "fail"
            elif roll < o.fail_rate + o.hang_rate:
                fault = "hang"
            elif roll < o.fail_rate + o.hang_rate + o.garbage_rate:
                fault = "garbage"
            else:
                fault = None
            if fault:
                self.faults[fault] += 1
        return fault

    def stats(self) -> Reply:
        """API requests served and faults injected so far."""
        with self._lock:
            return json_reply({"requests": self.requests, "faults": dict(self.faults)})

    def truth(self, source: str, query: dict[str, str]) -> Reply:
        """Count and sha256 of the sorted ids of ``source`` created in [since, until)."""
        if source not in EXT_IDS:
            raise BadRequest(f"no source {source!r}; the simulator holds {', '.join(EXT_IDS)}", 404)
        try:
            since, until = (math.ceil(float(query[k])) if query.get(k) else None for k in ("since", "until"))
        except (ValueError, OverflowError):
            raise BadRequest("since and until must be epoch seconds") from None
        ids = sorted(map(EXT_IDS[source], indices(self.records, (since, until))))
        return json_reply({"count": len(ids), "sha256_sorted_ids": hashlib.sha256("\n".join(ids).encode()).hexdigest()})

    def hn_search(self, query: dict[str, str], *, by_date: bool) -> Reply:
        """Algolia HN ``/search`` (by position) or ``/search_by_date`` (newest first)."""
        size = integer(query, "hitsPerPage", 20, 0, 1000)
        number = integer(query, "page", 0, 0)
        matching = indices(self.records, hn_window(query.get("numericFilters", "")))
        ordered = matching[::-1] if by_date else matching
        hits = []
        for i in ordered[number * size:(number + 1) * size]:
            r, object_id = record(i), EXT_IDS["hn"](i)
            hits.append({"objectID": object_id, "title": r["title"], "story_text": r["body"],
                         "url": f"https://example.org/story/{i}", "author": r["author"], "points": r["points"],
                         "num_comments": r["points"] % 50, "created_at": iso(r["ts"]), "created_at_i": r["ts"],
                         "_tags": ["story", f"author_{r['author']}", f"story_{object_id}"]})
        return json_reply({"hits": hits, "nbHits": len(matching), "page": number,
                           "nbPages": math.ceil(len(matching) / size) if size else 0, "hitsPerPage": size,
                           "exhaustiveNbHits": True, "query": query.get("query", ""), "params": urlencode(query),
                           "processingTimeMS": 1})

    def github_search(self, query: dict[str, str], host: str) -> Reply:
        """GitHub ``/search/issues``, paginated by Link header."""
        q = query.get("q", "")
        if not q.strip():
            raise BadRequest("Validation Failed: q is missing", 422)
        size = integer(query, "per_page", 30, 1, 100)
        number = integer(query, "page", 1, 1)
        matching = indices(self.records, github_window(q))
        items = []
        for i in matching[(number - 1) * size:number * size]:
            r = record(i)
            items.append({"id": 9_000_000 + i, "number": i + 1, "html_url": EXT_IDS["github"](i),
                          "url": f"https://api.github.com/repos/acme/repo/issues/{i + 1}", "title": r["title"],
                          "body": r["body"], "state": "open", "user": {"login": r["author"]},
                          "comments": r["points"] % 20, "created_at": iso(r["ts"]), "updated_at": iso(r["ts"] + 60),
                          "labels": [{"name": "bug"}], "score": 1.0})
        last = max(1, math.ceil(len(matching) / size))
        headers = {"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "29",
                   "X-RateLimit-Reset": str(int(time.time()) + 60)}

        def link(page: int, rel: str) -> str:
            return f'<http://{host}/github/search/issues?{urlencode({**query, "page": page})}>; rel="{rel}"'

        links = [link(number + 1, "next"), link(last, "last")] if number < last else []
        if number > 1:
            links += [link(1, "first"), link(number - 1, "prev")]
        if links:
            headers["Link"] = ", ".join(links)
        return json_reply({"total_count": len(matching), "incomplete_results": False, "items": items}, headers=headers)

    def arxiv_query(self, query: dict[str, str], host: str) -> Reply:
        """arXiv ``/api/query`` as an Atom feed, paginated by start/max_results."""
        start = integer(query, "start", 0, 0)
        size = integer(query, "max_results", 10, 0, 2000)
        matching = indices(self.records, arxiv_window(query.get("search_query", "")))
        entries = []
        for i in matching[start:start + size]:
            r, entry_id = record(i), EXT_IDS["arxiv"](i)
            entries.append(
                f"<entry><id>{entry_id}</id><updated>{iso(r['ts'])}</updated><published>{iso(r['ts'])}</published>"
                f"<title>{escape(r['title'])}</title><summary>{escape(r['body'])}</summary>"
                f"<author><name>{r['author']}</name></author>"
                f'<link href="{entry_id}" rel="alternate" type="text/html"/>'
                '<arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="cs.DC"/>'
                '<category term="cs.DC"/></entry>')
        feed = ('<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
                'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"><title>arXiv Query</title>'
                f"<opensearch:totalResults>{len(matching)}</opensearch:totalResults>"
                f"<opensearch:startIndex>{start}</opensearch:startIndex>"
                f"<opensearch:itemsPerPage>{size}</opensearch:itemsPerPage>{''.join(entries)}</feed>")
        return Reply(200, feed.encode(), "application/atom+xml")

    def stripe_customers(self, query: dict[str, str], host: str) -> Reply:
        """Stripe ``/v1/customers``: newest first, ``starting_after`` continues with older ones."""
        size = integer(query, "limit", 10, 1, 100)
        matching = indices(self.records, stripe_window(query))
        after = query.get("starting_after")
        if after:
            found = re.fullmatch(r"cus_(\d+)", after)
            if not found:
                raise BadRequest(f"No such customer: '{after}'")
            matching = range(matching.start, max(matching.start, min(int(found[1]), matching.stop)))
        data = []
        for i in matching[::-1][:size]:
            r = record(i)
            data.append({"id": EXT_IDS["stripe"](i), "object": "customer", "email": f"{r['author']}@example.com",
                         "name": r["title"][:30], "created": r["ts"], "livemode": False, "metadata": {}})
        return json_reply({"object": "list", "url": "/v1/customers", "data": data, "has_more": len(matching) > size})

    def answer(self, path: str, query: dict[str, str], host: str) -> Reply:
        """The API reply for ``path`` (404 for an unknown route)."""
        if path == "/hn/api/v1/search":
            return self.hn_search(query, by_date=False)
        if path == "/hn/api/v1/search_by_date":
            return self.hn_search(query, by_date=True)
        routes = {"/github/search/issues": self.github_search, "/arxiv/api/query": self.arxiv_query,
                  "/stripe/v1/customers": self.stripe_customers}
        if path not in routes:
            return json_reply({"message": f"not found: {path}"}, 404)
        return routes[path](query, host)


class Handler(BaseHTTPRequestHandler):
    """Answers GETs from the server's Simulator, injecting its faults."""

    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a benchmark makes tens of thousands of requests."""

    def do_GET(self) -> None:
        """One request: the control routes as they are, the API routes through the fault roll."""
        sim = self.server.sim
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if url.path == "/_stats":
                return self.send(sim.stats())
            if url.path.startswith("/_truth/"):
                return self.send(sim.truth(url.path.removeprefix("/_truth/"), query))
            fault = sim.draw()
            if sim.options.latency_ms:
                time.sleep(sim.options.latency_ms / 1000)
            if fault == "ratelimit":
                return self.send(json_reply({"message": "rate limited"}, 429,
                                            {"Retry-After": str(sim.options.retry_after)}))
            if fault == "fail":
                return self.send(json_reply({"message": "service unavailable"}, 503))
            if fault == "hang":
                time.sleep(sim.options.hang_s)
            reply = sim.answer(url.path, query, self.headers.get("Host", "127.0.0.1"))
            if fault == "garbage":
                reply = reply._replace(body=reply.body[: len(reply.body) // 2])
        except BadRequest as e:
            reply = json_reply({"message": str(e)}, e.status)
        return self.send(reply)

    def send(self, reply: Reply) -> None:
        """Write ``reply``; a client that already hung up (it timed out) is not an error."""
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except ConnectionError:
            self.close_connection = True


class Server(ThreadingHTTPServer):
    """A threaded HTTP server holding one Simulator; clients hanging up are not reported."""

    daemon_threads = True

    def __init__(self, host: str, port: int, sim: Simulator) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sim = sim
        super().__init__((host, port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore a client that hung up; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked: loopback only, probabilities within [0, 1] and summing to at most 1."""
    p = argparse.ArgumentParser(prog="apisim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="a loopback address")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--records", type=int, default=10_000)
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--fail-rate", type=float, default=0)
    p.add_argument("--ratelimit-every", type=int, default=0)
    p.add_argument("--retry-after", type=int, default=1, help="seconds in a 429's Retry-After")
    p.add_argument("--hang-rate", type=float, default=0)
    p.add_argument("--hang-s", type=float, default=30)
    p.add_argument("--garbage-rate", type=float, default=0)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args(argv)
    if a.host not in LOOPBACK:
        p.error(f"--host {a.host}: the simulator serves loopback only ({', '.join(LOOPBACK)})")
    rates = {"--fail-rate": a.fail_rate, "--hang-rate": a.hang_rate, "--garbage-rate": a.garbage_rate}
    for flag, rate in rates.items():
        if not 0 <= rate <= 1:
            p.error(f"{flag} {rate}: give a probability from 0 to 1")
    if sum(rates.values()) > 1:
        p.error("--fail-rate, --hang-rate and --garbage-rate add up to more than 1; lower them")
    for flag, value in {"--records": a.records, "--ratelimit-every": a.ratelimit_every,
                        "--retry-after": a.retry_after, "--latency-ms": a.latency_ms, "--hang-s": a.hang_s}.items():
        if value < 0:
            p.error(f"{flag} {value}: must not be negative")
    return a


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; the first line printed names the address."""
    options = parse_args(argv)
    server = Server(options.host, options.port, Simulator(options))
    host, port = server.server_address[:2]
    host = f"[{host}]" if ":" in host else host
    print(f"apisim listening on http://{host}:{port} records={options.records}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
