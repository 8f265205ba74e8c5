import { Link, useParams, useSearchParams } from "react-router-dom";
import { api } from "../api";
import { ArtifactBrowser } from "../components/Artifacts";
import { AliasChips, TagChips } from "../components/Chips";
import { LinkedTraces } from "../components/LinkedTraces";
import { ModelRuns } from "../components/ModelRuns";
import { Empty, ErrorState, Loading } from "../components/States";
import { quoteString } from "../lib/filter";
import { formatTime, shortId } from "../lib/format";
import { useAsync } from "../lib/hooks";
import { modelTraceFilter } from "../lib/linked";
import type { ModelVersion } from "../types";
import { runLink } from "./RunRedirect";

async function loadModel(name: string) {
  const [model, versions] = await Promise.all([
    api.getRegisteredModel(name),
    api.searchModelVersions(`name = ${quoteString(name)}`),
  ]);
  return { model, versions: versions.model_versions, more: !!versions.next_page_token };
}

function LoggedModelDetail({ modelId }: { modelId: string }) {
  const { data, error } = useAsync(() => api.getLoggedModel(modelId), [modelId]);
  if (error) return <ErrorState error={error} />;
  if (!data) return <Loading what="Loading logged model" />;
  return (
    <div data-testid="logged-model">
      <h3>Logged model</h3>
      <div className="kv">
        <div>Model id</div>
        <div className="mono">{data.model_id}</div>
        <div>Name</div>
        <div>{data.name}</div>
        <div>Flavor</div>
        <div>{data.flavor}</div>
        <div>Model URI</div>
        <div className="mono">
          runs:/{data.run_id}/{data.artifact_path}
        </div>
        <div>Logged</div>
        <div>{formatTime(data.creation_time)}</div>
        <div>Run</div>
        <div>
          <Link to={`/experiments/${data.experiment_id}/runs/${data.run_id}`}>{shortId(data.run_id)}</Link>
        </div>
      </div>
      <h3>Files</h3>
      <ArtifactBrowser runId={data.run_id} root={data.artifact_path} />
    </div>
  );
}

function VersionDetail({ version }: { version: ModelVersion }) {
  return (
    <div className="panel card" data-testid="model-version" style={{ marginTop: 12 }}>
      <div className="row">
        <h2 style={{ margin: 0 }}>Version {version.version}</h2>
        <AliasChips aliases={version.aliases} />
      </div>
      <div className="kv" style={{ marginTop: 8 }}>
        <div>URI</div>
        <div className="mono">
          models:/{version.name}/{version.version}
        </div>
        <div>Source</div>
        <div className="mono">{version.source}</div>
        <div>Run</div>
        <div>{version.run_id ? <Link to={runLink(version.run_id)}>{version.run_id}</Link> : "–"}</div>
        <div>Description</div>
        <div>{version.description || <span className="muted">none</span>}</div>
        <div>Tags</div>
        <div>{Object.keys(version.tags).length ? <TagChips tags={version.tags} /> : <span className="muted">none</span>}</div>
        <div>Created</div>
        <div>{formatTime(version.creation_time)}</div>
        <div>Updated</div>
        <div>{formatTime(version.last_updated_time)}</div>
      </div>
      {version.model_id ? (
        <>
          <h3>Runs</h3>
          <ModelRuns modelId={version.model_id} loggedBy={version.run_id} />
          <h3>Traces</h3>
          <LinkedTraces
            filter={modelTraceFilter(version.model_id)}
            testId="model-traces"
            empty={{
              title: "No traces are linked to this version",
              hint: (
                <p>
                  Trace with <code>tm.set_active_model(model_id="{version.model_id}")</code> active, or predict with{" "}
                  <code>
                    tm.load_model("models:/{version.name}/{version.version}")
                  </code>
                  .
                </p>
              ),
            }}
          />
          <LoggedModelDetail modelId={version.model_id} />
        </>
      ) : (
        <p className="muted">This version has no logged model, so no runs or traces are linked to it.</p>
      )}
    </div>
  );
}

/**
 * One registered model: its versions with aliases, one version in full with its runs, its
 * traces and its logged model.
 */
export function ModelDetail() {
  const { name = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const { data, error, reload } = useAsync(() => loadModel(name), [name]);
  if (error) return <ErrorState error={error} retry={reload} />;
  if (!data) return <Loading what="Loading model" />;
  const { model, versions, more } = data;
  const selected = versions.find((v) => String(v.version) === params.get("version")) ?? versions[0];
  return (
    <div className="page" data-testid="model-detail">
      <div className="row" style={{ marginBottom: 8 }}>
        <Link to="/models">← Models</Link>
        <h1 style={{ margin: 0 }}>{model.name}</h1>
        <AliasChips aliases={model.aliases} />
        <TagChips tags={model.tags} />
      </div>
      {model.description && <p>{model.description}</p>}
      {!versions.length ? (
        <Empty title="No versions yet">
          <p>
            Register one with <code>tm.register_model("runs:/&lt;run_id&gt;/agent", "{model.name}")</code>.
          </p>
        </Empty>
      ) : (
        <>
          <table className="grid" data-testid="model-versions">
            <thead>
              <tr>
                <th>Version</th>
                <th>Aliases</th>
                <th>Created</th>
                <th>Description</th>
                <th>Tags</th>
                <th>Source</th>
                <th>Run</th>
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr
                  key={v.version}
                  className={"clickable" + (v.version === selected.version ? " selected" : "")}
                  data-testid="model-version-row"
                  data-version={v.version}
                  aria-selected={v.version === selected.version}
                  onClick={() => setParams({ version: String(v.version) }, { replace: true })}
                >
                  <td>v{v.version}</td>
                  <td>
                    <AliasChips aliases={v.aliases} />
                  </td>
                  <td>{formatTime(v.creation_time)}</td>
                  <td className="preview" title={v.description ?? ""}>
                    {v.description}
                  </td>
                  <td>
                    <TagChips tags={v.tags} />
                  </td>
                  <td className="preview mono" title={v.source}>
                    {v.source}
                  </td>
                  <td>
                    {v.run_id ? (
                      <Link to={runLink(v.run_id)} onClick={(e) => e.stopPropagation()}>
                        {shortId(v.run_id)}
                      </Link>
                    ) : (
                      "–"
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {more && <div className="muted small">Only the newest {versions.length} versions are listed.</div>}
          <VersionDetail version={selected} />
        </>
      )}
    </div>
  );
}
