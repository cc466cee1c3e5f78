"""Ingest access control: an allow list of client networks for POST /messages.

An empty list allows every client that can connect, which is the trust
model of the default loopback bind. IPv4 clients reached through an IPv6
socket (``::ffff:10.1.2.3``) are matched against IPv4 networks. This module
checks addresses only: it does not authenticate anyone, so it is as strong
as the network's protection against spoofed source addresses.
"""

import ipaddress
from typing import Iterable, List, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class AllowList:
    """A set of networks; an empty set allows every address."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks: List[Network] = list(networks)

    def allows(self, host: str) -> bool:
        """Tell whether the client address ``host`` may post; unparsable addresses may not."""
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def __str__(self) -> str:
        return ", ".join(str(network) for network in self.networks) or "any address"
