import type { ReactNode } from "react";
import { ApiError } from "../api";

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <div className="state" role="status">
      <span className="spinner" />
      {what}…
    </div>
  );
}

export function ErrorState({ error, retry }: { error: Error; retry?: () => void }) {
  const unreachable = error instanceof ApiError && error.code === "UNREACHABLE";
  const notFound = error instanceof ApiError && error.status === 404;
  return (
    <div className="state error" role="alert">
      <div className="title">
        {unreachable ? "Server unreachable" : notFound ? "Not found" : "Something went wrong"}
      </div>
      <div>{error.message}</div>
      {retry && (
        <p>
          <button onClick={retry}>Retry</button>
        </p>
      )}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state">
      <div className="title">{title}</div>
      {children}
    </div>
  );
}
