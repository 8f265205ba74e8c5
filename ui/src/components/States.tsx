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

function TokenForm() {
  const save = (event: React.FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const token = new FormData(event.currentTarget).get("token");
    document.cookie = `tracemark_token=${encodeURIComponent(String(token ?? ""))}; path=/; SameSite=Strict`;
    window.location.reload();
  };
  return (
    <div className="state error" role="alert">
      <div className="title">This server needs an access token</div>
      <form onSubmit={save}>
        <input name="token" type="password" aria-label="Access token" placeholder="Access token" />{" "}
        <button type="submit">Sign in</button>
      </form>
    </div>
  );
}

export function ErrorState({ error, retry }: { error: Error; retry?: () => void }) {
  if (error instanceof ApiError && error.status === 401) return <TokenForm />;
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
