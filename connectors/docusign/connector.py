"""DocuSign eSignature REST API v2.1: envelopes (listStatusChanges, get, create from template, void),
recipients and documents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

from connectors.base import PaginationGuard, check_count
from connectors.docusign.credentials import DocuSignCredentials
from connectors.docusign.models import Document, Envelope, Recipient, TemplateRole
from connectors.exceptions import ConnectorParseError, ConnectorValidationError
from connectors.integration import IntegrationConnector
from connectors.text import int_or_none, iso_utc

# listStatusChanges requires from_date; "everything" starts before DocuSign's first envelope.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


class DocuSignConnector(IntegrationConnector):
    """Envelopes of one DocuSign account through the eSignature REST API v2.1.

    ``base_url`` is the account's base URI (explicit argument, else ``credentials.base_url``,
    else ``ARAGORA_DOCUSIGN_BASE_URL``, else the developer sandbox). Listing uses
    listStatusChanges: ``since``/``until`` become ``from_date``/``to_date``, which DocuSign
    applies to the envelope's last status change (``from_to_status=changed``), so a daily
    partition reads the envelopes that changed that day. DocuSign treats ``to_date`` as
    inclusive: an envelope changed at exactly the boundary instant can appear in two
    adjacent windows (the store keys envelopes by id, so it is not duplicated).
    The published limit is 3,000 calls per hour per account.
    """

    NAME = "docusign"
    DISPLAY_NAME = "DocuSign"
    CREDENTIALS_CLASS = DocuSignCredentials
    DEFAULT_BASE_URL = "https://demo.docusign.net"
    ENV_NAME = "DOCUSIGN"
    RATE_LIMIT = (3000, 3600)
    OBJECT_TYPES: ClassVar[tuple[str, ...]] = ("envelopes",)
    API_PREFIX: ClassVar[str] = "/restapi/v2.1"
    MAX_PAGE_SIZE: ClassVar[int] = 1000

    credentials: DocuSignCredentials

    def __init__(
        self, credentials: DocuSignCredentials | None = None, *, page_size: int = 100, **settings: Any
    ) -> None:
        super().__init__(credentials, **settings)
        self.page_size = check_count("page_size", page_size, self.NAME, maximum=self.MAX_PAGE_SIZE)

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.access_token}"}

    def _path(self, *parts: str) -> str:
        """An account-scoped API path; every id is percent-encoded so it stays one path segment."""
        segments = [quote(self.credentials.account_id, safe=""), *(quote(part, safe="") for part in parts)]
        return f"{self.API_PREFIX}/accounts/{'/'.join(segments)}"

    def _envelope_id(self, envelope_id: str) -> str:
        if not isinstance(envelope_id, str) or not envelope_id.strip():
            raise ConnectorValidationError(
                f"envelope_id must be a non-empty string, got {envelope_id!r}", connector=self.NAME
            )
        return envelope_id.strip()

    # --- uniform interface ------------------------------------------------------------------
    async def iter_objects(
        self,
        object_type: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Envelope]:
        """Every object of ``object_type`` (only "envelopes") whose status changed in [since, until)."""
        self._check_object_type(object_type)
        async for envelope in self.list_envelopes(since=since, until=until, limit=limit):
            yield envelope

    # --- envelopes ------------------------------------------------------------------------------
    async def list_envelopes(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | Sequence[str] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Envelope]:
        """Envelopes whose status changed in the window, following start_position or continuation_token.

        ``since`` None means from the beginning; ``status`` ("sent", ["completed", "voided"], ...)
        filters on the current status. A repeated page raises :class:`ConnectorParseError`.
        """
        self._check_limit(limit)
        since, until = self._check_window(since or EARLIEST, until)
        params: dict[str, Any] = {"from_date": iso_utc(since), "from_to_status": "changed"}
        if until is not None:
            params["to_date"] = iso_utc(until)
        if status:
            params["status"] = status if isinstance(status, str) else ",".join(status)

        operation = "list envelopes"
        guard = PaginationGuard(self.NAME, operation)
        position, token, yielded = 0, None, 0
        while True:
            page_params = {**params, "count": self.page_size if limit is None else min(self.page_size, limit - yielded)}
            if token:
                page_params["continuation_token"] = token
            else:
                page_params["start_position"] = position
            guard.check(("token", token) if token else ("start", position))
            page = await self._request("GET", self._path("envelopes"), params=page_params, operation=operation)
            if not isinstance(page, Mapping):
                raise ConnectorParseError(f"{operation}: the answer is not a JSON object", connector=self.NAME)
            envelopes = page.get("envelopes") or []
            if not isinstance(envelopes, list):
                raise ConnectorParseError(f"{operation}: 'envelopes' is not a list", connector=self.NAME)
            for raw in envelopes:
                yield Envelope.from_api(raw)
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            token = page.get("continuationToken") or None
            if not envelopes or not (token or page.get("nextUri")):
                return
            if not token:
                end = int_or_none(page.get("endPosition"))
                position = end + 1 if end is not None else position + len(envelopes)

    async def get_envelope(self, envelope_id: str) -> Envelope:
        """One envelope by id (:class:`ConnectorNotFoundError` when it does not exist)."""
        path = self._path("envelopes", self._envelope_id(envelope_id))
        return Envelope.from_api(await self._request("GET", path, operation="get envelope"))

    async def list_recipients(self, envelope_id: str) -> list[Recipient]:
        """Every recipient of an envelope, all groups flattened (signers, carbon copies, ...)."""
        envelope_id = self._envelope_id(envelope_id)
        path = self._path("envelopes", envelope_id, "recipients")
        data = await self._request("GET", path, operation="list recipients")
        return Recipient.list_from_api(data, envelope_id)

    async def list_documents(self, envelope_id: str) -> list[Document]:
        """The documents of an envelope (metadata, not content)."""
        envelope_id = self._envelope_id(envelope_id)
        path = self._path("envelopes", envelope_id, "documents")
        data = await self._request("GET", path, operation="list documents")
        documents = data.get("envelopeDocuments") if isinstance(data, Mapping) else None
        if not isinstance(documents, list):
            raise ConnectorParseError(
                "list documents: 'envelopeDocuments' is missing or not a list", connector=self.NAME
            )
        return [Document.from_api(doc, envelope_id) for doc in documents]

    async def create_envelope_from_template(
        self,
        template_id: str,
        roles: Sequence[TemplateRole | Mapping[str, str]],
        *,
        email_subject: str | None = None,
        send: bool = True,
    ) -> Envelope:
        """Create an envelope from a server template and send it (``send=False`` leaves a draft).

        ``roles`` fill the template's roles: :class:`TemplateRole` or dicts with
        roleName/name/email. Answers the created envelope (id, status, status time).
        """
        if not isinstance(template_id, str) or not template_id.strip():
            raise ConnectorValidationError("template_id must be a non-empty string", connector=self.NAME)
        template_roles = [role.to_api() if isinstance(role, TemplateRole) else dict(role) for role in roles]
        if not template_roles:
            raise ConnectorValidationError("at least one template role is needed", connector=self.NAME)
        for role in template_roles:
            missing = [key for key in ("roleName", "name", "email") if not role.get(key)]
            if missing:
                raise ConnectorValidationError(
                    f"template role {role.get('roleName')!r} lacks {', '.join(missing)}", connector=self.NAME
                )
        body: dict[str, Any] = {
            "templateId": template_id.strip(),
            "templateRoles": template_roles,
            "status": "sent" if send else "created",
        }
        if email_subject:
            body["emailSubject"] = email_subject
        return Envelope.from_api(
            await self._request("POST", self._path("envelopes"), body, operation="create envelope")
        )

    async def void_envelope(self, envelope_id: str, reason: str) -> dict[str, Any]:
        """Void a sent envelope; answers DocuSign's envelopeUpdateSummary (DocuSign requires a reason)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ConnectorValidationError("voiding an envelope needs a non-empty reason", connector=self.NAME)
        path = self._path("envelopes", self._envelope_id(envelope_id))
        return await self._request(
            "PUT", path, {"status": "voided", "voidedReason": reason.strip()}, operation="void envelope"
        )
