"""Artifact storage on the local file system, confined to each run's artifact root.

Every path a caller names is resolved (symlinks included) and must stay inside the
root; otherwise `InvalidArtifactPathError` is raised and nothing is read or written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Protocol

from tracemark.entities import FileInfo
from tracemark.exceptions import InvalidArtifactPathError, NotFoundError


class ArtifactRepository(Protocol):
    """Where one run's artifacts live: a local folder, or a server that proxies them."""

    def write_bytes(self, artifact_file: str, data: bytes) -> None: ...
    def read_bytes(self, artifact_file: str) -> bytes: ...
    def exists(self, artifact_file: str) -> bool: ...
    def log_artifact(
        self, local_file: str | os.PathLike[str], artifact_path: str | None
    ) -> None: ...
    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None
    ) -> None: ...
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]: ...
    def download_artifacts(self, path: str | None, dst_path: str | os.PathLike[str]) -> str: ...


class LocalArtifactRepository:
    """Read and write the artifacts under one root folder."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def _resolve(self, artifact_path: str | None) -> Path:
        """Map a relative artifact path to a real path inside the root, or raise."""
        rel = (artifact_path or "").replace("\\", "/")
        pure = PurePosixPath(rel)
        if pure.is_absolute() or rel.startswith("~") or (len(rel) > 1 and rel[1] == ":"):
            raise InvalidArtifactPathError(
                f"artifact path {artifact_path!r} must be relative", field="artifact_path"
            )
        if ".." in pure.parts or "\x00" in rel:
            raise InvalidArtifactPathError(
                f"artifact path {artifact_path!r} may not contain '..'", field="artifact_path"
            )
        root = self.root.resolve()
        target = (root / Path(*pure.parts)).resolve() if pure.parts else root
        if target != root and root not in target.parents:
            raise InvalidArtifactPathError(
                f"artifact path {artifact_path!r} resolves outside the run's artifact root",
                field="artifact_path",
            )
        return target

    def write_bytes(self, artifact_file: str, data: bytes) -> None:
        """Write one file atomically (a temporary file renamed into place)."""
        target = self._resolve(artifact_file)
        if not PurePosixPath(artifact_file).name:
            raise InvalidArtifactPathError("artifact file needs a file name", field="artifact_file")
        target.parent.mkdir(parents=True, exist_ok=True)
        self._resolve(artifact_file)  # the parent folders may be symlinks created meanwhile
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def read_bytes(self, artifact_file: str) -> bytes:
        """Read one file."""
        target = self._resolve(artifact_file)
        if not target.is_file():
            raise NotFoundError(f"artifact {artifact_file!r} does not exist")
        return target.read_bytes()

    def exists(self, artifact_file: str) -> bool:
        """Tell whether a file exists at that path."""
        return self._resolve(artifact_file).is_file()

    def log_artifact(self, local_file: str | os.PathLike[str], artifact_path: str | None) -> None:
        """Copy a local file into the folder `artifact_path`."""
        source = Path(local_file)
        if not source.is_file():
            raise NotFoundError(f"local file {str(local_file)!r} does not exist")
        name = source.name
        dest = f"{artifact_path.rstrip('/')}/{name}" if artifact_path else name
        target = self._resolve(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._resolve(dest)
        shutil.copyfile(source, target)

    def log_artifacts(self, local_dir: str | os.PathLike[str], artifact_path: str | None) -> None:
        """Copy a local folder's files (recursively) into the folder `artifact_path`."""
        source = Path(local_dir)
        if not source.is_dir():
            raise NotFoundError(f"local directory {str(local_dir)!r} does not exist")
        base = (artifact_path or "").rstrip("/")
        # Check every destination first so a bad one writes nothing.
        plan = []
        for path in sorted(source.rglob("*")):
            if path.is_file():
                rel = path.relative_to(source).as_posix()
                dest = f"{base}/{rel}" if base else rel
                plan.append((path, self._resolve(dest)))
        for path, target in plan:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """List the direct children of a folder, folders first, then by name."""
        target = self._resolve(path)
        if not target.exists():
            return []
        if target.is_file():
            return [FileInfo(path or target.name, False, target.stat().st_size)]
        base = (path or "").strip("/")
        out = []
        for child in target.iterdir():
            if child.name.startswith(".tmp-"):
                continue
            rel = f"{base}/{child.name}" if base else child.name
            if child.is_dir():
                out.append(FileInfo(rel, True, None))
            else:
                out.append(FileInfo(rel, False, child.stat().st_size))
        return sorted(out, key=lambda f: (not f.is_dir, f.path))

    def download_artifacts(self, path: str | None, dst_path: str | os.PathLike[str]) -> str:
        """Copy a file or folder out to `dst_path` and return the local path."""
        target = self._resolve(path)
        if not target.exists():
            raise NotFoundError(f"artifact {path!r} does not exist")
        dst = Path(dst_path)
        dst.mkdir(parents=True, exist_ok=True)
        out = dst / (target.name if path else "artifacts")
        if target.is_file():
            shutil.copyfile(target, out)
        else:
            root = self.root.resolve()
            for file in target.rglob("*"):
                real = file.resolve()
                if real != root and root not in real.parents:
                    raise InvalidArtifactPathError(
                        f"artifact {file.relative_to(root)!s} links outside the artifact root",
                        field="artifact_path",
                    )
            shutil.copytree(target, out, dirs_exist_ok=True)
        return str(out)
