"""The fleet API: one function per endpoint, and the route table that lists them.

Each endpoint turns a ``Request`` into a ``Response`` by asking the control
center. This module decides status codes and JSON shapes; the socket work is
in ``lunar.web`` and the rocket rules are in ``lunar.fleet``.
"""

import logging
from http import HTTPStatus
from typing import Dict, List, Optional

from lunar import bulk, history, openapi, query, rejections
from lunar.access import AllowList
from lunar.fleet import CapacityError, ControlCenter, JournalError, Refusal
from lunar.messages import InvalidJson, InvalidMessage, Message, decode_message
from lunar.query import QueryParameters
from lunar.rejections import Rejections
from lunar.web import JSON_CONTENT_TYPE, HttpError, Request, Response, Route, json_response

logger = logging.getLogger(__name__)

ACCEPTED = Response(HTTPStatus.ACCEPTED)  # empty, so the client can reuse the connection


class FleetApi:
    """The endpoints of the fleet API, bound to one control center."""

    def __init__(self, control_center: ControlCenter, ingest_allow: Optional[AllowList] = None,
                 rejections: Optional[Rejections] = None,
                 max_batch_bytes: int = bulk.DEFAULT_MAX_BATCH_BYTES,
                 max_batch_messages: int = bulk.MAX_BATCH_MESSAGES) -> None:
        self.control_center = control_center
        self.ingest_allow = ingest_allow or AllowList()
        self.rejections = rejections or Rejections()
        self.max_batch_bytes = max_batch_bytes  # body limit for NDJSON bodies
        self.max_batch_messages = max_batch_messages

    def routes(self) -> List[Route]:
        """Return the route table."""
        return [
            Route("/messages", {"POST": self.post_message}, inline=True),
            Route("/rockets", {"GET": self.get_rockets}),
            Route("/rockets/{channel}", {"GET": self.get_rocket}),
            Route("/rockets/{channel}/messages", {"GET": self.get_rocket_messages}),
            Route("/missions", {"GET": self.get_missions}),
            Route("/missions/{mission}", {"GET": self.get_mission}),
            Route("/openapi.json", {"GET": self.get_openapi}),
        ]

    def post_message(self, request: Request) -> Response:
        """Accept one telemetry message: 202 whether applied, buffered or duplicate.

        A batch body gets 200 with an outcome per message instead; see ``post_batch``.
        """
        client = request.client_address[0]
        if not self.ingest_allow.allows(client):
            self.rejections.record(rejections.FORBIDDEN, "address not in --ingest-allow", client)
            raise HttpError(HTTPStatus.FORBIDDEN,
                            f"client address {client} may not post messages; ask the "
                            "operator to add its network to --ingest-allow")
        content_type = request.headers.get("Content-Type")
        try:
            if bulk.is_ndjson(content_type):
                body = request.read_body(max(self.max_batch_bytes, request.max_body_bytes))
            else:
                body = request.read_body()
        except HttpError as error:
            reason = (rejections.TOO_LARGE if error.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
                      else rejections.INVALID_BODY)
            self.rejections.record(reason, error.message, client)
            raise
        kind = bulk.batch_kind(body, content_type)
        if kind != bulk.NDJSON and len(body) > request.max_body_bytes:
            # A body read with the NDJSON limit that turned out to be a single
            # message or a JSON array keeps the limit of other bodies.
            body_kind = "a JSON array" if kind == bulk.ARRAY else "one message"
            text = (f"body of {len(body)} bytes exceeds the limit of "
                    f"{request.max_body_bytes} bytes for {body_kind}")
            self.rejections.record(rejections.TOO_LARGE, text, client)
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, text)
        if kind is not None:
            request.release_hot_set()  # a batch of 1,000 messages takes about 10 ms
            return self.post_batch(request, body, kind)
        try:
            message = decode_message(body)
        except InvalidMessage as error:
            reason = rejections.INVALID_JSON if isinstance(error, InvalidJson) else rejections.INVALID_FIELD
            self.rejections.record(reason, str(error), client)
            raise HttpError(HTTPStatus.BAD_REQUEST, str(error)) from None
        try:
            outcome = self.control_center.receive(message)
        except CapacityError as error:
            flag = "--" + error.limit_name.replace("_", "-")
            text = f"message was not stored: {error}; retry later, or raise {flag} (now {error.limit})"
            self.rejections.record(rejections.CAPACITY, text, client, message.channel, message.number)
            raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, text) from None
        except JournalError as error:
            self.rejections.record(
                rejections.STORAGE_FAILED,
                f"could not record message {message.number} of channel {message.channel}: {error}",
                client, message.channel, message.number)
            raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE,
                            f"message was not stored, retry later: {error}") from None
        if logger.isEnabledFor(logging.DEBUG):  # outcome.value costs a lookup per message
            logger.debug("message %d of channel %s: %s", message.number, message.channel, outcome.value)
        return ACCEPTED

    def post_batch(self, request: Request, body: bytes, kind: str) -> Response:
        """Accept a JSON array or NDJSON batch: 200 with the outcome of each message, in order.

        Each invalid message gets its own error and the valid ones are
        accepted. The batch is recorded in one transaction. If that fails,
        nothing of it is applied and the response is 503. Every invalid or
        refused message counts as a rejection, as a single message would.
        """
        client = request.client_address[0]
        if kind == bulk.NDJSON:
            longest = max(len(line) for line in body.split(b"\n"))
            if longest > request.max_body_bytes:
                text = (f"an NDJSON line of {longest} bytes exceeds the limit of "
                        f"{request.max_body_bytes} bytes for one message")
                self.rejections.record(rejections.TOO_LARGE, text, client)
                raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, text)
        try:
            entries = bulk.decode_batch(body, kind, self.max_batch_messages)
        except bulk.BatchTooLarge as error:
            self.rejections.record(rejections.TOO_LARGE, str(error), client)
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(error)) from None
        except InvalidMessage as error:
            reason = rejections.INVALID_JSON if isinstance(error, InvalidJson) else rejections.INVALID_FIELD
            self.rejections.record(reason, f"batch: {error}", client)
            raise HttpError(HTTPStatus.BAD_REQUEST, str(error)) from None

        messages = [entry for entry in entries if isinstance(entry, Message)]
        try:
            accepted = self.control_center.receive_batch(messages)
        except JournalError as error:
            for message in messages:
                self.rejections.record(rejections.STORAGE_FAILED,
                                       f"could not record a batch of {len(messages)} messages: {error}",
                                       client, message.channel, message.number)
            raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE,
                            f"batch was not stored, retry later: {error}") from None

        for entry in entries:
            if isinstance(entry, InvalidMessage):
                reason = rejections.INVALID_JSON if isinstance(entry, InvalidJson) else rejections.INVALID_FIELD
                self.rejections.record(reason, f"in a batch: {entry}", client)
        for message, outcome in zip(messages, accepted):
            if isinstance(outcome, Refusal):
                self.rejections.record(rejections.CAPACITY, f"in a batch: {outcome.error}",
                                       client, message.channel, message.number)
        outcomes = iter(accepted)
        answer = [entry if isinstance(entry, InvalidMessage) else next(outcomes) for entry in entries]
        return Response(HTTPStatus.OK, bulk.encode_outcomes(answer), {"Content-Type": JSON_CONTENT_TYPE})

    def get_rockets(self, request: Request) -> Response:
        """List rockets, by launch time unless the query sorts, filters or pages them."""
        parameters = QueryParameters(request.query, query.ROCKET_LIST_PARAMETERS)
        rocket_query = query.parse_rocket_query(parameters)
        page, total = query.select_rockets(self.control_center.snapshot(), rocket_query)
        return _with_headers(
            json_response(page),
            query.paging_headers(request.path, parameters, rocket_query.paging, total),
        )

    def get_rocket(self, request: Request) -> Response:
        """Return one rocket, or 404."""
        query.reject_parameters(request.query)
        channel = request.params["channel"]
        rocket = self.control_center.rocket(channel)
        if rocket is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no rocket with channel {channel!r}")
        return json_response(rocket)

    def get_rocket_messages(self, request: Request) -> Response:
        """List one rocket's stored messages in message-number order, or 404."""
        parameters = QueryParameters(request.query, query.MESSAGE_LIST_PARAMETERS)
        paging = query.parse_paging(parameters, query.DEFAULT_MESSAGE_PAGE_SIZE)
        channel = request.params["channel"]
        page = self.control_center.stored_messages(channel, paging.offset, paging.limit)
        if page is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no rocket with channel {channel!r}")
        return _with_headers(
            json_response(history.message_list(page)),
            query.paging_headers(request.path, parameters, paging, page.total),
        )

    def get_missions(self, request: Request) -> Response:
        """List the current mission names, or with details=true their rocket counts."""
        parameters = QueryParameters(request.query, query.MISSION_LIST_PARAMETERS)
        if parameters.choice("details", query.BOOLEANS, "false") == "true":
            return json_response(query.summarize_missions(self.control_center.snapshot()))
        return json_response(self.control_center.missions())

    def get_mission(self, request: Request) -> Response:
        """List the rockets on one mission, or 404; sorted, filtered and paged like /rockets."""
        parameters = QueryParameters(request.query, query.MISSION_ROCKETS_PARAMETERS)
        rocket_query = query.parse_rocket_query(parameters)
        mission = request.params["mission"]
        on_mission = query.rockets_on_mission(self.control_center.snapshot(), mission)
        if not on_mission:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no rocket is on mission {mission!r}")
        page, total = query.select_rockets(on_mission, rocket_query)
        return _with_headers(
            json_response(page),
            query.paging_headers(request.path, parameters, rocket_query.paging, total),
        )

    def get_openapi(self, request: Request) -> Response:
        """Return the OpenAPI document that describes this API."""
        query.reject_parameters(request.query)
        return json_response(openapi.DOCUMENT)


def _with_headers(response: Response, headers: Dict[str, str]) -> Response:
    return response._replace(headers={**response.headers, **headers})
