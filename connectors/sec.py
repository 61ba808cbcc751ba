"""SEC EDGAR evidence connector: full-text search over filings and a company's filing history."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from connectors.base import BaseConnector, Evidence, PaginationGuard, in_window
from connectors.base import evidence_id as scoped_id
from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorValidationError,
)
from connectors.provenance import SourceType
from connectors.redact import get_logger
from connectors.text import clamp, freshness, html_to_text, parse_datetime

log = get_logger(__name__)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ACCESSION = re.compile(r"^(\d{10})-?(\d{2})-?(\d{6})$")
_CIK = re.compile(r"^\d{1,10}$")
_UA_HINT = (
    "SEC EDGAR requires a User-Agent naming you and a contact e-mail, e.g. "
    "SEC_USER_AGENT='Company Name admin@example.com' (or user_agent=...); SEC refuses requests without one"
)
_FULL_TEXT_START = date(2001, 1, 1)  # EDGAR full-text search covers filings since 2001

# Form type -> (authority, what it is). Audited periodic reports and registration statements rank highest,
# current reports and proxies next, ownership reports and staff correspondence lowest; amendments ("/A")
# rank 0.05 below their form; unknown forms get 0.5.
_FORMS: dict[str, tuple[float, str]] = {
    "10-K": (0.95, "annual report"),
    "20-F": (0.95, "annual report of a foreign private issuer"),
    "40-F": (0.9, "annual report of a Canadian issuer"),
    "10-Q": (0.9, "quarterly report"),
    "S-1": (0.9, "registration statement"),
    "F-1": (0.9, "registration statement of a foreign issuer"),
    "S-4": (0.85, "registration statement for a business combination"),
    "8-K": (0.85, "current report"),
    "6-K": (0.8, "current report of a foreign private issuer"),
    "DEF 14A": (0.8, "definitive proxy statement"),
    "S-3": (0.75, "shelf registration statement"),
    "S-3ASR": (0.75, "automatic shelf registration statement"),
    "424B": (0.7, "prospectus"),
    "S-8": (0.7, "registration of employee benefit plan securities"),
    "SC 13D": (0.7, "beneficial ownership report"),
    "SC 13G": (0.65, "passive beneficial ownership report"),
    "DEFA14A": (0.65, "additional proxy soliciting material"),
    "3": (0.6, "initial statement of insider ownership"),
    "4": (0.6, "statement of changes in insider ownership"),
    "5": (0.6, "annual statement of insider ownership"),
    "CORRESP": (0.5, "correspondence with SEC staff"),
    "UPLOAD": (0.5, "SEC staff letter"),
}
_DEFAULT_FORM = (0.5, "filing")

# The most common 8-K items, so a current report's content says what happened.
_8K_ITEMS: dict[str, str] = {
    "1.01": "entry into a material definitive agreement",
    "1.02": "termination of a material definitive agreement",
    "2.01": "completion of an acquisition or disposition of assets",
    "2.02": "results of operations and financial condition",
    "2.03": "creation of a direct financial obligation",
    "5.02": "departure or appointment of directors or officers",
    "5.07": "submission of matters to a vote of security holders",
    "7.01": "Regulation FD disclosure",
    "8.01": "other events",
    "9.01": "financial statements and exhibits",
}


def form_info(form: str) -> tuple[float, str]:
    """(authority, description) of a form type from the documented table."""
    form = (form or "").strip().upper()
    base, amended = (form[:-2], True) if form.endswith("/A") else (form, False)
    authority, description = _FORMS.get("424B" if base.startswith("424B") else base, _DEFAULT_FORM)
    if amended:
        return max(0.0, authority - 0.05), f"amendment to {description}"
    return authority, description


def _clean(value: Any) -> str:
    """Text of a field, treating null and the literal string "None" (seen in re-serialised bodies) as empty."""
    text = html_to_text(str(value)) if value is not None else ""
    return "" if text in ("None", "null") else text


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [v for v in value if v not in (None, "")]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _normalise_accession(value: str) -> str:
    match = _ACCESSION.match(value.strip())
    if not match:
        raise ConnectorValidationError(
            f"{value!r} is not an SEC accession number (expected 0001234567-23-000123)", connector="SEC EDGAR"
        )
    return "-".join(match.groups())


def _normalise_cik(value: Any) -> int:
    text = str(value).strip()
    if not _CIK.match(text) or int(text) == 0:
        raise ConnectorValidationError(f"{value!r} is not a CIK (1 to 10 digits)", connector="SEC EDGAR")
    return int(text)


def _filing_day(value: Any) -> datetime | None:
    moment = parse_datetime(value)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0) if moment else None


class SECConnector(BaseConnector):
    """SEC EDGAR filings: full-text search (efts.sec.gov) and company filing histories (data.sec.gov).

    ``search(query)`` runs EDGAR full-text search (``q`` as given; quote a phrase for an exact match), with
    ``forms=`` ("10-K,8-K" or a list) and the window as ``dateRange=custom&startdt&enddt``; pages of 100 hits are
    read with the ``from`` offset until ``limit`` or the total is reached; documents of one filing collapse into
    one result. ``search(query, ticker=... | cik=...)`` lists that company's filings from
    ``/submissions/CIK##########.json`` (``filings.recent``, then the older ``filings.files`` pages), newest first;
    there ``query`` keeps filings whose company, form, description, items or document name contain every
    whitespace-separated term (empty query or ``*``: all). Tickers resolve through ``company_tickers.json`` (cached).
    Window: a filing's time is its filing date at 00:00 UTC and must lie in [since, until).
    Ids: ``sec:<cik>:<accession>`` (e.g. ``sec:1318605:0001564590-22-037979``), the same in both modes;
    ``fetch`` takes that id or ``<cik>:<accession>`` and returns None for an unknown company or filing.
    Hosts: efts.sec.gov, data.sec.gov and www.sec.gov; ``base_url`` (or ``ARAGORA_SEC_BASE_URL``) names one root
    for a mirror or simulator laid out as ``{base}/efts/LATEST/search-index``, ``{base}/data/submissions/...``,
    ``{base}/www/files/company_tickers.json`` and ``{base}/www/Archives/...``; ``efts_url``/``data_url``/``www_url``
    override each root. Filing URLs are ``{www}/Archives/edgar/data/<cik>/<accession without dashes>/<document>``.
    Scores:
      - authority: by form type (``form_info``): 10-K/20-F 0.95; 10-Q/S-1/F-1/40-F 0.9; 8-K/S-4 0.85;
        6-K/DEF 14A 0.8; shelf registrations 0.75; prospectuses, S-8, 13D 0.7; 13G 0.65; Forms 3/4/5 0.6;
        staff correspondence 0.5; others 0.5; amendments 0.05 less.
      - confidence: full text: 0.55 + 0.35 x (hit score / best score of the page) + 0.1 when the hit is the
        filing's main document; company listing: 0.7 + 0.15 when the filing carries XBRL data + 0.15 when it
        names a primary document.
      - freshness: ``freshness(filing date, half_life_days=180)``.
    SEC allows 10 requests per second per client across its hosts (RATE_LIMIT, one limiter for all three) and
    refuses clients without a User-Agent holding a contact e-mail: ``user_agent``/``SEC_USER_AGENT`` is required
    and sent verbatim as the User-Agent header.
    """

    SOURCE = "sec"
    DEFAULT_BASE_URL = "https://www.sec.gov"
    ENV_NAME = "SEC"
    CREDENTIALS = {"user_agent": "SEC_USER_AGENT"}
    SETTINGS: ClassVar[frozenset[str]] = frozenset({"user_agent"})
    REQUIRED_CREDENTIALS = ("user_agent",)
    RATE_LIMIT = (10, 1.0)
    EFTS_URL = "https://efts.sec.gov"
    DATA_URL = "https://data.sec.gov"
    WWW_URL = "https://www.sec.gov"
    PAGE_SIZE = 100
    FRESHNESS_HALF_LIFE_DAYS = 180.0

    def __init__(
        self,
        *,
        base_url: str | None = None,
        user_agent: str | None = None,
        efts_url: str | None = None,
        data_url: str | None = None,
        www_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url=base_url, **kwargs)
        self._credential("user_agent", user_agent)
        mirror = self.base_url if self.base_url != self.DEFAULT_BASE_URL else None
        self.efts_url = (efts_url or (f"{mirror}/efts" if mirror else self.EFTS_URL)).rstrip("/")
        self.data_url = (data_url or (f"{mirror}/data" if mirror else self.DATA_URL)).rstrip("/")
        self.www_url = (www_url or (f"{mirror}/www" if mirror else self.WWW_URL)).rstrip("/")

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "SEC EDGAR"

    @property
    def source_type(self) -> SourceType:
        """Regulatory filings."""
        return SourceType.REGULATORY_FILING

    @property
    def user_agent(self) -> str:
        """The configured contact User-Agent, sent verbatim as SEC's fair-access policy asks."""
        return self._credentials.get("user_agent") or super().user_agent

    def missing_credentials(self) -> list[str]:
        """SEC_USER_AGENT when it is unset or holds no contact e-mail address."""
        contact = self._credentials.get("user_agent") or ""
        return [] if _EMAIL.search(contact) else [self.CREDENTIALS["user_agent"]]

    def require_configured(self) -> None:
        """Raise :class:`ConnectorAuthError` explaining SEC's User-Agent rule, before any request."""
        if self.missing_credentials():
            raise ConnectorAuthError(_UA_HINT, connector=self.name)

    # --- search ---------------------------------------------------------------------------
    async def search(
        self,
        query: str,
        limit: int = 10,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        **kwargs: Any,
    ) -> list[Evidence]:
        """Filings matching ``query`` filed in [since, until); kwargs ``forms``, and ``ticker`` or ``cik``."""
        self._check_limit(limit)
        self._check_options(kwargs, ("forms", "ticker", "cik"))
        since, until = self._check_window(since, until)
        forms = [str(f).strip().upper() for f in _as_list(kwargs.get("forms"))]
        self.require_configured()
        if kwargs.get("ticker") is not None or kwargs.get("cik") is not None:
            cik = await self._resolve_cik(kwargs.get("ticker"), kwargs.get("cik"))
            return await self._company_filings(cik, query, limit, since, until, forms)
        if not (query or "").strip():
            raise ConnectorValidationError(
                "SEC full-text search needs a query (or pass ticker=/cik= to list a company's filings)",
                connector=self.name,
            )
        return await self._full_text(query.strip(), limit, since, until, forms)

    async def _full_text(
        self, query: str, limit: int, since: datetime | None, until: datetime | None, forms: list[str]
    ) -> list[Evidence]:
        params: dict[str, Any] = {"q": query}
        if forms:
            params["forms"] = ",".join(forms)
        if since or until:
            end = (until - timedelta(microseconds=1)).date() if until else datetime.now(UTC).date()
            params.update(
                dateRange="custom", startdt=(since.date() if since else _FULL_TEXT_START).isoformat(),
                enddt=end.isoformat(),
            )
        guard = PaginationGuard(self.name, "full-text search")
        results: list[Evidence] = []
        seen: set[str] = set()
        offset = 0
        while len(results) < limit:
            guard.check(offset)
            body = await self._get_json(f"{self.efts_url}/LATEST/search-index", {**params, "from": offset})
            hits_block = body.get("hits") if isinstance(body, Mapping) else None
            if not isinstance(hits_block, Mapping) or not isinstance(hits_block.get("hits") or [], list):
                raise ConnectorParseError("full-text search: expected an Elasticsearch 'hits' object",
                                          connector=self.name)
            hits = hits_block.get("hits") or []
            best = max((h.get("_score") or 0.0 for h in hits if isinstance(h, Mapping)), default=0.0)
            for hit in hits:
                evidence = self._from_hit(hit, best) if isinstance(hit, Mapping) else None
                if evidence is None or evidence.id in seen or not in_window(evidence.created_at, since, until):
                    continue
                seen.add(evidence.id)
                results.append(evidence)
            offset += len(hits)
            total = hits_block.get("total")
            total = total.get("value") if isinstance(total, Mapping) else total
            if len(hits) < self.PAGE_SIZE or (isinstance(total, int) and offset >= total):
                break
        return results[:limit]

    async def _company_filings(
        self, cik: int, query: str, limit: int, since: datetime | None, until: datetime | None, forms: list[str]
    ) -> list[Evidence]:
        submissions = await self._submissions(cik)
        if submissions is None:
            raise ConnectorNotFoundError(f"EDGAR has no company with CIK {cik}", connector=self.name)
        terms = [] if (query or "").strip() in ("", "*") else (query or "").lower().split()
        results: list[Evidence] = []
        async for row in self._filing_rows(submissions, since, until):
            if forms and str(row.get("form") or "").upper() not in forms:
                continue
            evidence = self._from_row(cik, submissions, row)
            haystack = " ".join([evidence.title, evidence.content, str(row.get("primaryDocument") or "")]).lower()
            if not all(term in haystack for term in terms):
                continue
            results.append(evidence)
            if len(results) >= limit:
                break
        return results

    async def _filing_rows(
        self, submissions: Mapping[str, Any], since: datetime | None, until: datetime | None
    ) -> AsyncIterator[dict[str, Any]]:
        """Filing rows newest first within the window; older ``filings.files`` pages are read only when needed."""
        filings = submissions.get("filings") if isinstance(submissions.get("filings"), Mapping) else {}
        older = sorted(
            (f for f in filings.get("files") or [] if isinstance(f, Mapping) and f.get("name")),
            key=lambda f: str(f.get("filingTo") or ""), reverse=True,
        )
        guard = PaginationGuard(self.name, "company filings")
        page: Any = filings.get("recent") or {}
        while page is not None:
            for row in _columns_to_rows(page):
                filed = _filing_day(row.get("filingDate"))
                if filed is None:
                    if since is None and until is None:
                        yield row
                elif since and filed < since:
                    return  # rows are newest first: everything after this is older still
                elif until is None or filed < until:
                    yield row
            page = await self._older_page(older, since, until, guard)

    async def _older_page(
        self, older: list[Mapping[str, Any]], since: datetime | None, until: datetime | None, guard: PaginationGuard
    ) -> Any:
        """The next older submissions page overlapping the window (consumed from ``older``), or None."""
        while older:
            meta = older.pop(0)
            newest, oldest = _filing_day(meta.get("filingTo")), _filing_day(meta.get("filingFrom"))
            if since and newest and newest < since:
                return None
            if until and oldest and oldest >= until:
                continue
            guard.check(meta["name"])
            return await self._cached_json(("submissions page", meta["name"]),
                                           f"{self.data_url}/submissions/{meta['name']}")
        return None

    # --- fetch ------------------------------------------------------------------------------
    async def fetch(self, evidence_id: str) -> Evidence | None:
        """One filing by ``sec:<cik>:<accession>`` or ``<cik>:<accession>``; None when EDGAR does not have it."""
        key = evidence_id.strip().removeprefix(f"{self.SOURCE}:")
        cik_text, _, accession_text = key.partition(":")
        cik, accession = _normalise_cik(cik_text), _normalise_accession(accession_text)
        item_id = scoped_id(self.SOURCE, f"{cik}:{accession}")
        cached = self._cache_get(item_id)
        if cached is not None:
            return cached
        self.require_configured()
        submissions = await self._submissions(cik)
        if submissions is None:
            return None
        async for row in self._filing_rows(submissions, None, None):
            if row.get("accessionNumber") == accession:
                evidence = self._from_row(cik, submissions, row)
                self._cache_put(item_id, evidence)
                return evidence
        return None

    # --- EDGAR lookups --------------------------------------------------------------------
    async def _resolve_cik(self, ticker: Any, cik: Any) -> int:
        if cik is not None:
            return _normalise_cik(cik)
        symbol = str(ticker).strip().upper().replace(".", "-")
        body = await self._cached_json(("company_tickers",), f"{self.www_url}/files/company_tickers.json")
        tickers = {
            str(row["ticker"]).upper(): int(row["cik_str"])
            for row in body.values()
            if isinstance(row, Mapping) and row.get("ticker") and str(row.get("cik_str") or "").isdigit()
        }
        if symbol not in tickers:
            raise ConnectorValidationError(
                f"ticker {symbol!r} is not in SEC's company_tickers.json; pass cik=... instead", connector=self.name
            )
        return tickers[symbol]

    async def _submissions(self, cik: int) -> Mapping[str, Any] | None:
        """A company's submissions document (cached), or None when EDGAR does not know the CIK."""
        try:
            return await self._cached_json(("submissions", cik), f"{self.data_url}/submissions/CIK{cik:010d}.json")
        except ConnectorNotFoundError:
            return None

    async def _cached_json(self, key: tuple[str, Any], url: str) -> Mapping[str, Any]:
        """A JSON object from ``url`` through the connector's TTL cache."""
        cached = self._cache_get(key)
        if cached is not None:
            return cached
        body = await self._get_json(url)
        if not isinstance(body, Mapping):
            raise ConnectorParseError(f"{url}: expected a JSON object", connector=self.name)
        self._cache_put(key, body)
        return body

    # --- evidence -------------------------------------------------------------------------
    def _from_hit(self, hit: Mapping[str, Any], best_score: float) -> Evidence | None:
        source = hit.get("_source") if isinstance(hit.get("_source"), Mapping) else {}
        accession_text, _, document = str(hit.get("_id") or "").partition(":")
        accession_text = str(source.get("adsh") or accession_text)
        ciks = _as_list(source.get("ciks"))
        if not ciks or not _ACCESSION.match(accession_text) or not _CIK.match(str(ciks[0])):
            return None
        names = [" ".join(re.sub(r"\(CIK \d+\)\s*$", "", _clean(n)).split())
                 for n in _as_list(source.get("display_names"))]
        score = hit.get("_score")
        relevance = score / best_score if isinstance(score, int | float) and best_score > 0 else 0.5
        form = _clean(source.get("form")) or _clean((_as_list(source.get("root_forms")) or [""])[0])
        main_document = source.get("sequence") in (1, "1") or _clean(source.get("file_type")) == form
        return self._filing_evidence(
            cik=int(ciks[0]),
            accession=_normalise_accession(accession_text),
            company=names[0] if names else "",
            form=form,
            filed=_clean(source.get("file_date")),
            period=_clean(source.get("period_ending")),
            items=[_clean(i) for i in _as_list(source.get("items"))],
            document=document,
            description=_clean(source.get("file_description")),
            location=", ".join(_clean(loc) for loc in _as_list(source.get("biz_locations"))),
            confidence=0.55 + 0.35 * relevance + 0.1 * main_document,
            extra={"other_filers": names[1:], "file_type": _clean(source.get("file_type")) or None,
                   "score": score if isinstance(score, int | float) else None},
        )

    def _from_row(self, cik: int, submissions: Mapping[str, Any], row: Mapping[str, Any]) -> Evidence:
        tickers = [_clean(t) for t in _as_list(submissions.get("tickers"))]
        name = _clean(submissions.get("name"))
        company = f"{name} ({tickers[0]})" if name and tickers else name
        addresses = submissions.get("addresses") if isinstance(submissions.get("addresses"), Mapping) else {}
        business = addresses.get("business") if isinstance(addresses.get("business"), Mapping) else {}
        location = ", ".join(p for p in (_clean(business.get("city")), _clean(business.get("stateOrCountry"))) if p)
        document = _clean(row.get("primaryDocument"))
        has_xbrl = bool(row.get("isXBRL")) or bool(row.get("isInlineXBRL"))
        return self._filing_evidence(
            cik=cik,
            accession=_normalise_accession(str(row.get("accessionNumber"))),
            company=company,
            form=_clean(row.get("form")),
            filed=_clean(row.get("filingDate")),
            period=_clean(row.get("reportDate")),
            items=_as_list(_clean(row.get("items"))),
            document=document,
            description=_clean(row.get("primaryDocDescription")),
            location=location,
            confidence=0.7 + 0.15 * has_xbrl + 0.15 * bool(document),
            extra={"accepted_at": _clean(row.get("acceptanceDateTime")) or None,
                   "size": row.get("size") if isinstance(row.get("size"), int) else None,
                   "xbrl": has_xbrl, "sic": _clean(submissions.get("sic")) or None,
                   "industry": _clean(submissions.get("sicDescription")) or None},
        )

    def _filing_evidence(
        self, *, cik: int, accession: str, company: str, form: str, filed: str, period: str, items: list[str],
        document: str, description: str, location: str, confidence: float, extra: dict[str, Any],
    ) -> Evidence:
        authority, kind = form_info(form)
        filed_at = _filing_day(filed)
        folder = f"{self.www_url}/Archives/edgar/data/{cik}/{accession.replace('-', '')}/"
        who = company or f"CIK {cik}"
        sentences = [f"{who} filed {form or 'a filing'} ({kind}) with the SEC on {filed or 'an unknown date'}"
                     + (f", for the period ending {period}." if period else ".")]
        if description and description.upper() not in (form.upper(), "PRIMARY DOCUMENT"):
            sentences.append(f"Document: {description}.")
        if items:
            sentences.append("Items: " + "; ".join(
                f"{item} {_8K_ITEMS[item]}" if item in _8K_ITEMS else item for item in items) + ".")
        if location:
            sentences.append(f"Business address: {location}.")
        return Evidence(
            id=scoped_id(self.SOURCE, f"{cik}:{accession}"),
            source_type=SourceType.REGULATORY_FILING,
            source_id=f"{cik}:{accession}",
            content=" ".join(sentences),
            title=f"{who} {form} ({filed})" if filed else f"{who} {form}",
            created_at=filed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if filed_at else None,
            author=company or None,
            url=folder + document if document else folder,
            confidence=clamp(confidence),
            freshness=freshness(filed_at, self.FRESHNESS_HALF_LIFE_DAYS),
            authority=authority,
            metadata={"cik": cik, "accession": accession, "form": form or None, "filed": filed or None,
                      "period": period or None, "items": items, "document": document or None, **extra},
        )


def _columns_to_rows(columns: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Rows of EDGAR's columnar filing arrays (``accessionNumber[i]``, ``form[i]``, ...), newest first."""
    if not isinstance(columns, Mapping):
        return iter(())
    arrays = {k: v for k, v in columns.items() if isinstance(v, list)}
    accessions = arrays.get("accessionNumber") or []
    rows = [
        {key: values[i] if i < len(values) else None for key, values in arrays.items()}
        for i in range(len(accessions))
        if isinstance(accessions[i], str) and _ACCESSION.match(accessions[i])
    ]
    rows.sort(key=lambda r: str(r.get("filingDate") or ""), reverse=True)
    return iter(rows)
