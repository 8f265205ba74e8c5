import { useEffect, useState } from "react";
import { api } from "../api";
import type { FileInfo } from "../types";
import { JsonView } from "./JsonView";
import { ErrorState, Loading } from "./States";

const IMAGE = /\.(png|jpe?g|gif|webp|svg)$/i;
const TEXT = /\.(txt|log|md|py|yaml|yml|csv|tsv|html|ini|toml|cfg)$/i;

export interface Table {
  columns: string[];
  data: unknown[][];
}

export function isTable(value: unknown): value is Table {
  const v = value as Table;
  return !!v && Array.isArray(v.columns) && Array.isArray(v.data);
}

export function TableView({ table, limit = 200 }: { table: Table; limit?: number }) {
  return (
    <div style={{ overflow: "auto" }}>
      <table className="grid" data-testid="artifact-table">
        <thead>
          <tr>
            {table.columns.map((c) => (
              <th key={c}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {table.data.slice(0, limit).map((row, i) => (
            <tr key={i}>
              {row.map((cell, j) => (
                <td key={j}>{typeof cell === "object" ? JSON.stringify(cell) : String(cell ?? "")}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {table.data.length > limit && <div className="muted">first {limit} of {table.data.length} rows</div>}
    </div>
  );
}

type Preview =
  | { kind: "image"; url: string }
  | { kind: "text"; text: string }
  | { kind: "json"; value: unknown }
  | { kind: "table"; table: Table }
  | { kind: "binary"; size: number };

async function loadPreview(runId: string, file: FileInfo): Promise<Preview> {
  const url = api.artifactUrl(runId, file.path);
  if (IMAGE.test(file.path)) return { kind: "image", url };
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not read ${file.path}: HTTP ${response.status}`);
  const text = await response.text();
  if (/\.json$/i.test(file.path)) {
    try {
      const value = JSON.parse(text);
      return isTable(value) ? { kind: "table", table: value } : { kind: "json", value };
    } catch {
      return { kind: "text", text };
    }
  }
  if (TEXT.test(file.path) || !text.slice(0, 1000).includes("\u0000")) return { kind: "text", text };
  return { kind: "binary", size: file.file_size ?? text.length };
}

/**
 * Browse a run's artifact folders and preview text, JSON, images and log_table tables;
 * `root` keeps the browser inside one folder (a logged model's, say).
 */
export function ArtifactBrowser({ runId, root = "" }: { runId: string; root?: string }) {
  const [path, setPath] = useState(root);
  const [files, setFiles] = useState<FileInfo[] | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [selected, setSelected] = useState<FileInfo | null>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewError, setPreviewError] = useState<Error | null>(null);

  useEffect(() => {
    let live = true;
    setFiles(null);
    api.listArtifacts(runId, path).then(
      (r) => live && setFiles(r.files),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [runId, path]);

  useEffect(() => {
    if (!selected) return;
    let live = true;
    setPreview(null);
    setPreviewError(null);
    loadPreview(runId, selected).then(
      (p) => live && setPreview(p),
      (e) => live && setPreviewError(e),
    );
    return () => {
      live = false;
    };
  }, [runId, selected]);

  if (error) return <ErrorState error={error} />;
  const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
  return (
    <div className="split" data-testid="artifacts">
      <div className="filelist">
        {path && path !== root && <div onClick={() => setPath(parent)}>⬑ ..</div>}
        {files === null ? (
          <Loading what="Listing" />
        ) : files.length === 0 ? (
          <div className="muted">No artifacts.</div>
        ) : (
          files.map((f) => (
            <div
              key={f.path}
              className={selected?.path === f.path ? "sel" : ""}
              onClick={() => (f.is_dir ? setPath(f.path) : setSelected(f))}
            >
              {f.is_dir ? "📁 " : "📄 "}
              {f.path.slice(f.path.lastIndexOf("/") + 1)}
            </div>
          ))
        )}
      </div>
      <div className="preview-box">
        {!selected ? (
          <div className="muted">Select a file to preview it.</div>
        ) : previewError ? (
          <ErrorState error={previewError} />
        ) : !preview ? (
          <Loading what="Loading preview" />
        ) : (
          <>
            <div className="row" style={{ marginBottom: 6 }}>
              <b>{selected.path}</b>
              <a href={api.artifactUrl(runId, selected.path)} download>
                download
              </a>
            </div>
            {preview.kind === "image" && <img src={preview.url} alt={selected.path} />}
            {preview.kind === "text" && <pre style={{ whiteSpace: "pre-wrap" }}>{preview.text}</pre>}
            {preview.kind === "json" && <JsonView value={preview.value} />}
            {preview.kind === "table" && <TableView table={preview.table} />}
            {preview.kind === "binary" && <div className="muted">Binary file ({preview.size} bytes).</div>}
          </>
        )}
      </div>
    </div>
  );
}
