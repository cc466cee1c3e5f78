"""The fleet API: one function per endpoint, and the route table that lists them.

Each endpoint turns a ``Request`` into a ``Response`` by asking the control
center. This module decides status codes and JSON shapes; the socket work is
in ``lunar.web`` and the rocket rules are in ``lunar.fleet``.
"""

import logging
from http import HTTPStatus
from typing import List, Optional

from lunar import rejections
from lunar.access import AllowList
from lunar.fleet import CapacityError, ControlCenter, JournalError
from lunar.messages import InvalidJson, InvalidMessage, decode_message
from lunar.rejections import Rejections
from lunar.web import HttpError, Request, Response, Route, json_response

logger = logging.getLogger(__name__)

ACCEPTED = Response(HTTPStatus.ACCEPTED)  # empty, so the client can reuse the connection


class FleetApi:
    """The endpoints of the fleet API, bound to one control center."""

    def __init__(self, control_center: ControlCenter, ingest_allow: Optional[AllowList] = None,
                 rejections: Optional[Rejections] = None) -> None:
        self.control_center = control_center
        self.ingest_allow = ingest_allow or AllowList()
        self.rejections = rejections or Rejections()

    def routes(self) -> List[Route]:
        """Return the route table."""
        return [
            Route("/messages", {"POST": self.post_message}),
            Route("/rockets", {"GET": self.get_rockets}),
            Route("/rockets/{channel}", {"GET": self.get_rocket}),
            Route("/missions", {"GET": self.get_missions}),
            Route("/missions/{mission}", {"GET": self.get_mission}),
        ]

    def post_message(self, request: Request) -> Response:
        """Accept one telemetry message: 202 whether applied, buffered or duplicate."""
        client = request.client_address[0]
        if not self.ingest_allow.allows(client):
            self.rejections.record(rejections.FORBIDDEN, "address not in --ingest-allow", client)
            raise HttpError(HTTPStatus.FORBIDDEN,
                            f"client address {client} may not post messages; ask the "
                            "operator to add its network to --ingest-allow")
        try:
            body = request.read_body()
        except HttpError as error:
            reason = (rejections.TOO_LARGE if error.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
                      else rejections.INVALID_BODY)
            self.rejections.record(reason, error.message, client)
            raise
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
        logger.debug("message %d of channel %s: %s", message.number, message.channel, outcome.value)
        return ACCEPTED

    def get_rockets(self, request: Request) -> Response:
        """List every rocket by launch time."""
        return json_response(self.control_center.rockets())

    def get_rocket(self, request: Request) -> Response:
        """Return one rocket, or 404."""
        channel = request.params["channel"]
        rocket = self.control_center.rocket(channel)
        if rocket is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no rocket with channel {channel!r}")
        return json_response(rocket)

    def get_missions(self, request: Request) -> Response:
        """List the current mission names."""
        return json_response(self.control_center.missions())

    def get_mission(self, request: Request) -> Response:
        """List the rockets on one mission, or 404."""
        mission = request.params["mission"]
        rockets = self.control_center.mission_rockets(mission)
        if not rockets:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no rocket is on mission {mission!r}")
        return json_response(rockets)
