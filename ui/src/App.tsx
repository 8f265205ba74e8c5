import { useState } from "react";
import { Link, NavLink, Navigate, Route, Routes, useLocation } from "react-router-dom";
import { Empty } from "./components/States";
import { CompareEvaluations } from "./pages/CompareEvaluations";
import { CompareRuns } from "./pages/CompareRuns";
import { EvaluationRun } from "./pages/EvaluationRun";
import { EvaluationsTab } from "./pages/EvaluationsTab";
import { ExperimentLayout } from "./pages/ExperimentLayout";
import { ExperimentsPage } from "./pages/ExperimentsPage";
import { ModelDetail } from "./pages/ModelDetail";
import { ModelsPage } from "./pages/ModelsPage";
import { OverviewTab } from "./pages/OverviewTab";
import { PromptDetail } from "./pages/PromptDetail";
import { PromptsPage } from "./pages/PromptsPage";
import { RunDetail } from "./pages/RunDetail";
import { RunRedirect } from "./pages/RunRedirect";
import { RunsTab } from "./pages/RunsTab";
import { SessionDetail } from "./pages/SessionDetail";
import { SessionsTab } from "./pages/SessionsTab";
import { TraceDetail } from "./pages/TraceDetail";
import { TracesTab } from "./pages/TracesTab";

function ThemeToggle() {
  const [theme, setTheme] = useState(() => document.documentElement.dataset.theme ?? "light");
  const flip = () => {
    const next = theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem("tracemark.theme", next);
    } catch {
      // private mode: the theme lasts for this page only
    }
    setTheme(next);
  };
  return (
    <button onClick={flip} aria-label="toggle theme" title="Light / dark theme">
      {theme === "dark" ? "☀ Light" : "☾ Dark"}
    </button>
  );
}

/** The top-level areas; an experiment's pages (and a run's) belong to Experiments. */
function AreaNav() {
  const { pathname } = useLocation();
  const experiments = pathname === "/" || pathname.startsWith("/experiments") || pathname.startsWith("/runs");
  return (
    <nav className="crumbs areas" aria-label="areas">
      <Link to="/" className={experiments ? "active" : ""} aria-current={experiments ? "page" : undefined}>
        Experiments
      </Link>
      <NavLink to="/prompts">Prompts</NavLink>
      <NavLink to="/models">Models</NavLink>
    </nav>
  );
}

export function App() {
  return (
    <div className="app">
      <header className="topbar">
        <Link to="/" className="brand">
          tracemark
        </Link>
        <AreaNav />
        <a href="/docs" className="small">
          API
        </a>
        <ThemeToggle />
      </header>
      <main className="main">
        <Routes>
          <Route path="/" element={<ExperimentsPage />} />
          <Route path="/experiments/:experimentId" element={<ExperimentLayout />}>
            <Route index element={<Navigate to="traces" replace />} />
            <Route path="traces" element={<TracesTab />} />
            <Route path="traces/:traceId" element={<TraceDetail />} />
            <Route path="sessions" element={<SessionsTab />} />
            <Route path="sessions/:sessionId" element={<SessionDetail />} />
            <Route path="runs" element={<RunsTab />} />
            <Route path="runs/:runId" element={<RunDetail />} />
            <Route path="compare" element={<CompareRuns />} />
            <Route path="evaluations" element={<EvaluationsTab />} />
            <Route path="evaluations/compare" element={<CompareEvaluations />} />
            <Route path="evaluations/:runId" element={<EvaluationRun />} />
            <Route path="overview" element={<OverviewTab />} />
          </Route>
          <Route path="/runs/:runId" element={<RunRedirect />} />
          <Route path="/prompts" element={<PromptsPage />} />
          <Route path="/prompts/:name" element={<PromptDetail />} />
          <Route path="/models" element={<ModelsPage />} />
          <Route path="/models/:name" element={<ModelDetail />} />
          <Route
            path="*"
            element={
              <Empty title="Page not found">
                <Link to="/">Back to the experiments</Link>
              </Empty>
            }
          />
        </Routes>
      </main>
    </div>
  );
}
