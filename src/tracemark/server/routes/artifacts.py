"""Artifacts proxied through the server, so clients need no storage credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from tracemark.exceptions import NotFoundError
from tracemark.store.artifacts import ArtifactRepository

router = APIRouter(prefix="/api/v1", tags=["artifacts"])


def _repo(request: Request, run_id: str) -> ArtifactRepository:
    store = request.app.state.store
    return store.artifact_repository(store.get_run(run_id))


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(run_id: str, request: Request, path: str = "") -> dict[str, Any]:
    """List the direct children of an artifact folder."""
    files = _repo(request, run_id).list_artifacts(path or None)
    return {
        "files": [{"path": f.path, "is_dir": f.is_dir, "file_size": f.file_size} for f in files]
    }


@router.put("/runs/{run_id}/artifacts/{artifact_path:path}")
async def upload_artifact(run_id: str, artifact_path: str, request: Request) -> dict[str, Any]:
    """Store the request body as one artifact file."""
    data = await request.body()
    from starlette.concurrency import run_in_threadpool

    def write() -> None:
        _repo(request, run_id).write_bytes(artifact_path, data)

    await run_in_threadpool(write)
    return {}


@router.get("/runs/{run_id}/artifacts/{artifact_path:path}")
def download_artifact(run_id: str, artifact_path: str, request: Request) -> Response:
    """Return one artifact file's bytes."""
    repo = _repo(request, run_id)
    if not repo.exists(artifact_path):
        raise NotFoundError(f"artifact {artifact_path!r} of run {run_id!r} does not exist")
    return Response(repo.read_bytes(artifact_path), media_type="application/octet-stream")
