"""Trace attachments in the artifact store: stored once per content, shared between traces.

Media a span refers to (``tracemark-attachment:sha256:<hex>?...``) is kept next to the
large span payloads, relative to the artifact root:

- ``attachments/<hex[:2]>/<hex>/data``: the bytes, written once whatever holds them;
- ``attachments/<hex[:2]>/<hex>/traces/<trace_id>``: one empty file per trace holding them,
  so the bytes go when the last such trace is deleted;
- ``traces/<trace_id>/attachments/<hex>``: the media type that trace gave them; a trace
  reads only the attachments listed there.

The files are written while `log_traces`' transaction is open and removed again if it
fails (`AttachmentFiles.undo`); bytes another trace holds are never removed.
"""

from __future__ import annotations

import contextlib
import os

from tracemark.entities.trace import Attachment, is_sha256, media_type_or_default
from tracemark.exceptions import InvalidInputError, NotFoundError, StoreError
from tracemark.store.artifacts import LocalArtifactRepository

__all__ = ["ATTACHMENTS_DIR", "AttachmentFiles", "check_sha256"]

ATTACHMENTS_DIR = "attachments"
_TRACES_DIR = "traces"  # as `trace_ingest.TRACES_DIR`: a trace's files live in one folder


def check_sha256(sha256: object) -> str:
    """Check that an attachment id is a SHA-256 digest in 64 lowercase hex digits."""
    if not is_sha256(sha256):
        raise InvalidInputError(
            f"attachment id must be a SHA-256 digest in 64 lowercase hex characters, "
            f"got {sha256!r}",
            field="sha256",
        )
    return sha256  # type: ignore[return-value]


def _folder(sha256: str) -> str:
    return f"{ATTACHMENTS_DIR}/{sha256[:2]}/{sha256}"


class AttachmentFiles:
    """Write, read and release the attachments of traces under one artifact root.

    Example::

        files = AttachmentFiles("/data/artifacts")
        created: list[str] = []
        files.write(trace_id, attachment, created)
        files.read(trace_id, attachment.sha256).data

    Args:
        root: The artifact root of the store.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._repository = LocalArtifactRepository(root)

    def _path(self, ref: str) -> str:
        return os.path.join(self.root, *ref.split("/"))

    def write(self, trace_id: str, attachment: Attachment, created: list[str]) -> None:
        """Store one attachment of a trace, appending the files it created to `created`.

        The trace's hold comes first and its listing last, so a reader never finds a listed
        attachment without its bytes, and a concurrent release never takes bytes being held.
        """
        sha = attachment.sha256
        folder = _folder(sha)
        for ref, data in (
            (f"{folder}/traces/{trace_id}", b""),
            (f"{folder}/data", attachment.data),
            (f"{_TRACES_DIR}/{trace_id}/{ATTACHMENTS_DIR}/{sha}", attachment.media_type.encode()),
        ):
            if not os.path.exists(self._path(ref)):
                self._repository.write_bytes(ref, data)
                created.append(ref)

    def undo(self, created: list[str]) -> None:
        """Remove what `write` created for a batch whose transaction failed.

        Bytes are removed only when no trace holds them any more.
        """
        data_refs = []
        for ref in reversed(created):
            if ref.endswith("/data"):
                data_refs.append(ref)
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(ref))
        for ref in data_refs:
            self._remove_unheld(ref[: -len("/data")])

    def read(self, trace_id: str, sha256: str) -> Attachment:
        """Return an attachment of a trace.

        Raises:
            NotFoundError: The trace holds no attachment with this digest.
            StoreError: The attachment is listed but its bytes are missing.
        """
        listing = self._path(f"{_TRACES_DIR}/{trace_id}/{ATTACHMENTS_DIR}/{sha256}")
        try:
            with open(listing, "rb") as fh:
                media_type = fh.read().decode("ascii", "replace")
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"trace {trace_id!r} has no attachment {sha256!r}") from None
        try:
            with open(self._path(f"{_folder(sha256)}/data"), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise StoreError(
                f"attachment {sha256!r} of trace {trace_id!r} is missing from the artifact "
                f"store {self.root!r}"
            ) from None
        return Attachment(sha256, media_type_or_default(media_type), data)

    def release(self, trace_id: str) -> None:
        """Let go of a deleted trace's attachments: bytes no other trace holds are removed."""
        listing = self._path(f"{_TRACES_DIR}/{trace_id}/{ATTACHMENTS_DIR}")
        try:
            names = os.listdir(listing)
        except (FileNotFoundError, NotADirectoryError):
            return
        for sha in names:
            if not is_sha256(sha):
                continue
            folder = _folder(sha)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(f"{folder}/traces/{trace_id}"))
            self._remove_unheld(folder)

    def _remove_unheld(self, folder: str) -> None:
        """Remove an attachment's folder when no trace holds it.

        `rmdir` of the holders' folder fails while it has an entry, so a hold written
        meanwhile keeps the bytes (short of a hold written between the two steps below).
        """
        holders = self._path(f"{folder}/traces")
        try:
            os.rmdir(holders)
        except FileNotFoundError:
            pass
        except OSError:  # still held
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(f"{folder}/data"))
        for ref in (folder, folder.rsplit("/", 1)[0]):
            with contextlib.suppress(OSError):  # not empty: another attachment, or a writer
                os.rmdir(self._path(ref))
