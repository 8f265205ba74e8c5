import { Link, useParams, useSearchParams } from "react-router-dom";
import { api } from "../api";
import { ChatView } from "../components/ChatView";
import { AliasChips, TagChips } from "../components/Chips";
import { LineDiff } from "../components/LineDiff";
import { LinkedTraces } from "../components/LinkedTraces";
import { Empty, ErrorState, Loading } from "../components/States";
import { asMessage, type ChatMessage } from "../lib/chat";
import { formatRelative, formatTime } from "../lib/format";
import { useAsync } from "../lib/hooks";
import { promptVersionFilter, usedPromptVersion } from "../lib/linked";
import { templateText, templateVariables } from "../lib/prompts";
import type { PromptVersion } from "../types";

async function loadPrompt(name: string) {
  const [prompt, versions] = await Promise.all([api.getPrompt(name), api.listPromptVersions(name)]);
  return { prompt, versions: versions.versions, more: !!versions.next_page_token };
}

function Template({ version }: { version: PromptVersion }) {
  if (typeof version.template === "string") {
    return (
      <pre className="template" data-testid="template">
        {version.template}
      </pre>
    );
  }
  const messages = version.template.map(asMessage).filter((m): m is ChatMessage => m !== null);
  return (
    <div data-testid="template">
      <ChatView messages={messages} />
    </div>
  );
}

function VersionDetail({ version }: { version: PromptVersion }) {
  const variables = templateVariables(version.template);
  return (
    <div data-testid="prompt-version">
      <div className="row">
        <h2 style={{ margin: 0 }}>Version {version.version}</h2>
        <AliasChips aliases={version.aliases} />
        <span className="muted">{formatTime(version.creation_time)}</span>
      </div>
      <div className="panel" style={{ padding: "8px 0" }}>
        <div className="kv">
          <div>URI</div>
          <div className="mono">
            prompts:/{version.name}/{version.version}
          </div>
          <div>Commit message</div>
          <div data-testid="commit-message">{version.commit_message || <span className="muted">none</span>}</div>
          <div>Kind</div>
          <div>{typeof version.template === "string" ? "text" : `chat (${version.template.length} messages)`}</div>
          <div>Variables</div>
          <div data-testid="variables">
            {variables.length ? (
              variables.map((v) => (
                <span className="tag mono" key={v}>
                  {v}
                </span>
              ))
            ) : (
              <span className="muted">none</span>
            )}
          </div>
          <div>Tags</div>
          <div>{Object.keys(version.tags).length ? <TagChips tags={version.tags} /> : <span className="muted">none</span>}</div>
        </div>
      </div>
      <Template version={version} />
    </div>
  );
}

/** One prompt: its versions (newest first), one in full with a diff and the traces that used it. */
export function PromptDetail() {
  const { name = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const { data, error, reload } = useAsync(() => loadPrompt(name), [name]);
  if (error) return <ErrorState error={error} retry={reload} />;
  if (!data) return <Loading what="Loading prompt" />;
  const { prompt, versions, more } = data;
  if (!versions.length) return <Empty title={`Prompt ${prompt.name} has no versions`} />;

  const selected = versions.find((v) => String(v.version) === params.get("version")) ?? versions[0];
  // By default the diff shows what this version changed; for the first one, what came next.
  const previous =
    versions.find((v) => v.version < selected.version) ??
    [...versions].reverse().find((v) => v.version > selected.version) ??
    null;
  const diffParam = params.get("diff");
  const against =
    diffParam === "none"
      ? null
      : (versions.find((v) => v.version !== selected.version && String(v.version) === diffParam) ?? previous);
  const [older, newer] = against && against.version > selected.version ? [selected, against] : [against, selected];
  const set = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setParams(next, { replace: true });
  };

  return (
    <div className="page" data-testid="prompt-detail">
      <div className="row" style={{ marginBottom: 8 }}>
        <Link to="/prompts">← Prompts</Link>
        <h1 style={{ margin: 0 }}>{prompt.name}</h1>
        <AliasChips aliases={prompt.aliases} />
        <TagChips tags={prompt.tags} />
      </div>
      {prompt.description && <p>{prompt.description}</p>}
      <div className="registry-layout">
        <div className="version-list" data-testid="version-list">
          {versions.map((v) => (
            <Link
              key={v.version}
              to={`?version=${v.version}`}
              replace
              className={"version-item" + (v.version === selected.version ? " sel" : "")}
              data-testid="version-item"
              data-version={v.version}
              aria-current={v.version === selected.version ? "true" : undefined}
            >
              <div className="row">
                <b>v{v.version}</b>
                <AliasChips aliases={v.aliases} />
                <span className="spacer" />
                <span className="muted small" title={formatTime(v.creation_time)}>
                  {formatRelative(v.creation_time)}
                </span>
              </div>
              <div className="muted small">{v.commit_message || "no commit message"}</div>
            </Link>
          ))}
          {more && <div className="muted small">Only the newest {versions.length} versions are listed.</div>}
        </div>
        <div style={{ minWidth: 0 }}>
          <VersionDetail version={selected} />
          <div className="row" style={{ marginTop: 16 }}>
            <h2 style={{ margin: 0 }}>Diff</h2>
            <select
              aria-label="compare with version"
              value={against ? String(against.version) : "none"}
              onChange={(e) => set({ diff: e.target.value })}
            >
              <option value="none">no comparison</option>
              {versions
                .filter((v) => v.version !== selected.version)
                .map((v) => (
                  <option key={v.version} value={v.version}>
                    with v{v.version}
                  </option>
                ))}
            </select>
            {older && (
              <span className="muted">
                v{older.version} → v{newer!.version}
              </span>
            )}
          </div>
          {older && newer ? (
            <LineDiff before={templateText(older.template)} after={templateText(newer.template)} />
          ) : (
            <div className="muted" style={{ marginTop: 6 }}>
              {versions.length > 1 ? "Pick a version to compare with." : "This prompt has one version."}
            </div>
          )}
          <h2 style={{ marginTop: 16 }}>Traces that used v{selected.version}</h2>
          <LinkedTraces
            filter={promptVersionFilter(selected.name, selected.version)}
            keep={(t) => usedPromptVersion(t, selected.name, selected.version)}
            testId="prompt-traces"
            empty={{
              title: `No trace has loaded v${selected.version} yet`,
              hint: (
                <p>
                  Load it inside a traced function with{" "}
                  <code>
                    tm.load_prompt("prompts:/{selected.name}/{selected.version}")
                  </code>
                  ; the trace records it in its metadata <code>tracemark.prompts</code>.
                </p>
              ),
            }}
          />
        </div>
      </div>
    </div>
  );
}
