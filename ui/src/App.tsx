import { useState } from "react";
import { Link, Navigate, Route, Routes } from "react-router-dom";
import { Empty } from "./components/States";
import { CompareRuns } from "./pages/CompareRuns";
import { ExperimentLayout } from "./pages/ExperimentLayout";
import { ExperimentsPage } from "./pages/ExperimentsPage";
import { OverviewTab } from "./pages/OverviewTab";
import { RunDetail } from "./pages/RunDetail";
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

export function App() {
  return (
    <div className="app">
      <header className="topbar">
        <Link to="/" className="brand">
          tracemark
        </Link>
        <nav className="crumbs">
          <Link to="/">Experiments</Link>
        </nav>
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
            <Route path="overview" element={<OverviewTab />} />
          </Route>
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
