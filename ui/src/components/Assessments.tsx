import { useState } from "react";
import { api } from "../api";
import { formatTime, formatValue } from "../lib/format";
import type { Assessment } from "../types";

interface Props {
  traceId: string;
  assessments: Assessment[];
  spanId: string | null;
  spanName?: string;
  onChange: () => void;
}

type ValueKind = "thumbs" | "number" | "label";

function parseValue(kind: ValueKind, raw: string, thumbs: boolean | null): unknown {
  if (kind === "thumbs") return thumbs;
  if (kind === "number") return raw.trim() === "" ? null : Number(raw);
  return raw;
}

/** Feedback and expectations of a trace, and the form that adds or corrects one. */
export function Assessments({ traceId, assessments, spanId, spanName, onChange }: Props) {
  const [correcting, setCorrecting] = useState<Assessment | null>(null);
  const byId = new Map(assessments.map((a) => [a.assessment_id, a]));
  const supersededBy = new Map<string, Assessment>();
  for (const a of assessments) if (a.overrides) supersededBy.set(a.overrides, a);
  return (
    <div data-testid="assessments">
      {assessments.length === 0 && <div className="muted">No feedback or expectations yet.</div>}
      {assessments.map((a) => (
        <div
          key={a.assessment_id}
          className={"assessment" + (a.valid ? "" : " invalid")}
          data-testid="assessment"
          data-name={a.name}
        >
          <div className="row">
            <span className="badge">{a.kind}</span>
            <b>{a.name}</b>
            <span className="value">{a.error ? `error: ${a.error}` : formatValue(a.value)}</span>
            <span className="spacer" />
            {a.valid && a.kind === "feedback" && (
              <button className="link small" onClick={() => setCorrecting(a)}>
                correct
              </button>
            )}
          </div>
          <div className="muted small">
            {a.source.source_type} · {a.source.source_id} · {formatTime(a.created_time_ms)}
            {a.span_id ? ` · span ${a.span_id.slice(0, 8)}` : ""}
            {a.overrides && byId.get(a.overrides)
              ? ` · corrects ${formatValue(byId.get(a.overrides)!.value)}`
              : ""}
            {!a.valid && supersededBy.get(a.assessment_id) ? " · overridden" : ""}
          </div>
          {a.rationale && <div className="small">{a.rationale}</div>}
        </div>
      ))}
      {correcting ? (
        <AssessmentForm
          key={"c" + correcting.assessment_id}
          traceId={traceId}
          spanId={correcting.span_id}
          correcting={correcting}
          onDone={() => {
            setCorrecting(null);
            onChange();
          }}
          onCancel={() => setCorrecting(null)}
        />
      ) : (
        <AssessmentForm traceId={traceId} spanId={spanId} spanName={spanName} onDone={onChange} />
      )}
    </div>
  );
}

function AssessmentForm({
  traceId,
  spanId,
  spanName,
  correcting,
  onDone,
  onCancel,
}: {
  traceId: string;
  spanId: string | null;
  spanName?: string;
  correcting?: Assessment;
  onDone: () => void;
  onCancel?: () => void;
}) {
  const initialKind: ValueKind =
    correcting === undefined
      ? "thumbs"
      : typeof correcting.value === "boolean"
        ? "thumbs"
        : typeof correcting.value === "number"
          ? "number"
          : "label";
  const [kind, setKind] = useState<"feedback" | "expectation">(correcting ? "feedback" : "feedback");
  const [name, setName] = useState(correcting?.name ?? "helpful");
  const [valueKind, setValueKind] = useState<ValueKind>(initialKind);
  const [thumbs, setThumbs] = useState<boolean | null>(null);
  const [raw, setRaw] = useState("");
  const [comment, setComment] = useState("");
  const [onSpan, setOnSpan] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  const value = kind === "expectation" ? raw : parseValue(valueKind, raw, thumbs);
  const ready =
    name.trim() !== "" &&
    (kind === "expectation" ? raw.trim() !== "" : valueKind === "thumbs" ? thumbs !== null : raw.trim() !== "");

  const save = async () => {
    if (valueKind === "number" && kind === "feedback" && Number.isNaN(value)) {
      setError("The score must be a number.");
      return;
    }
    setSaving(true);
    setError(null);
    try {
      await api.createAssessment(traceId, {
        name: name.trim(),
        kind,
        value,
        rationale: comment.trim() || null,
        source_type: "HUMAN",
        source_id: "ui",
        span_id: correcting ? correcting.span_id : onSpan ? spanId : null,
        overrides: correcting?.assessment_id ?? null,
      });
      setThumbs(null);
      setRaw("");
      setComment("");
      onDone();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setSaving(false);
    }
  };

  return (
    <div className="form" data-testid={correcting ? "correct-form" : "feedback-form"}>
      <div className="row">
        <b>{correcting ? `Correct “${correcting.name}” (was ${formatValue(correcting.value)})` : "Add"}</b>
        {!correcting && (
          <select aria-label="assessment kind" value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
            <option value="feedback">feedback</option>
            <option value="expectation">expectation (ground truth)</option>
          </select>
        )}
        {!correcting && (
          <input aria-label="assessment name" value={name} onChange={(e) => setName(e.target.value)} placeholder="name" />
        )}
      </div>
      {kind === "feedback" ? (
        <div className="row">
          <select
            aria-label="value type"
            value={valueKind}
            onChange={(e) => setValueKind(e.target.value as ValueKind)}
          >
            <option value="thumbs">thumbs</option>
            <option value="number">score</option>
            <option value="label">label</option>
          </select>
          {valueKind === "thumbs" ? (
            <>
              <button
                className={thumbs === true ? "on" : ""}
                aria-pressed={thumbs === true}
                onClick={() => setThumbs(true)}
                aria-label="thumbs up"
              >
                👍 Good
              </button>
              <button
                className={thumbs === false ? "on" : ""}
                aria-pressed={thumbs === false}
                onClick={() => setThumbs(false)}
                aria-label="thumbs down"
              >
                👎 Bad
              </button>
            </>
          ) : (
            <input
              aria-label="value"
              value={raw}
              onChange={(e) => setRaw(e.target.value)}
              placeholder={valueKind === "number" ? "0.8" : "correct"}
              inputMode={valueKind === "number" ? "decimal" : "text"}
            />
          )}
        </div>
      ) : (
        <textarea aria-label="expected value" value={raw} onChange={(e) => setRaw(e.target.value)} placeholder="The expected answer" />
      )}
      <textarea aria-label="comment" value={comment} onChange={(e) => setComment(e.target.value)} placeholder="Comment (optional)" />
      {!correcting && spanId && (
        <label className="small">
          <input type="checkbox" checked={onSpan} onChange={(e) => setOnSpan(e.target.checked)} /> attach to span{" "}
          <b>{spanName ?? spanId}</b> instead of the whole trace
        </label>
      )}
      {error && (
        <div className="filter-error" role="alert">
          {error}
        </div>
      )}
      <div className="row">
        <button className="primary" disabled={!ready || saving} onClick={save}>
          {saving ? "Saving…" : "Save"}
        </button>
        {onCancel && <button onClick={onCancel}>Cancel</button>}
      </div>
    </div>
  );
}
