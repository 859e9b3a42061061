"""``rest:`` backend: a repository on any server speaking restic's REST
protocol (v2) with basic authentication: ``rclone serve restic`` (and so
any of rclone's storage services), restic's rest-server, neostore-server.

It is the HTTP backend with what such servers need:

* ``rest:http(s)://[USER:PASS@]HOST:PORT/PATH``: the account in the URL
  (or ``NEOSTORE_SERVER_USER``/``_TOKEN``), sent as basic authentication;
  the repository may be a path of several folders.
* Names of two segments (``snapshots/<target>/<id>``) are sent as one
  (``<target>+<id>``, :func:`.names.flat`): rclone lists leaf names only.
  neostore-server takes either spelling.
* rclone overwrites an object in place, and deletes it when an upload to
  its name is cut off. So a content-addressed object that exists is never
  sent again (same name, same bytes), and a create-only save checks first,
  then sends ``If-None-Match: *`` (which neostore-server honours; rclone
  ignores it, leaving a window between the check and the write — two
  clients creating the same target record at the same instant could both
  succeed there; docs/design.md).
"""

from __future__ import annotations

from ..errors import PermanentBackendError, UsageError
from .base import Payload
from .http import HttpBackend
from .names import CONTENT_ADDRESSED, flat, unflat
from .options import BackendOptions


class RestBackend(HttpBackend):
    nested_paths = True

    def __init__(self, location: str, options: BackendOptions | None = None) -> None:
        url = location[len("rest:") :]
        if not url.startswith(("http://", "https://")):
            raise UsageError(
                f"{location}: expected rest:http(s)://[USER:PASS@]HOST:PORT/PATH",
                option="repository",
            )
        super().__init__(url, options)
        self.location = "rest:" + self._base
        self._opened_with = (location, options or BackendOptions())

    def _name_in_url(self, name: str) -> str:
        return flat(name)

    def _name_listed(self, otype: str, listed: str) -> str:
        return unflat(otype, listed)

    def create_repository(self) -> None:
        if self.exists_repository():  # rclone answers 200 to a second creation
            raise PermanentBackendError(f"{self.location}: a repository already exists here")
        super().create_repository()

    def save(self, otype: str, name: str, data: Payload) -> None:
        if otype in CONTENT_ADDRESSED and self.exists(otype, name):
            return  # the same bytes are there; sending them again risks them (module doc)
        super().save(otype, name, data)

    def save_new(self, otype: str, name: str, data: Payload) -> bool:
        if self.exists(otype, name):
            return False
        return super().save_new(otype, name, data)
