"""lunar: a rocket telemetry service built on the Python standard library.

The package contains the domain model (``lunar.fleet``), message validation
(``lunar.messages``), the HTTP layer (``lunar.api``) and a stand-in for the
``rockets`` test program (``lunar.rockets``). It does not configure logging:
``lunar_server.py`` does that.
"""

__version__ = "0.1.0"
