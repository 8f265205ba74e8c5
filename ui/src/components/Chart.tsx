import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  values: (number | null)[];
  color?: string;
}

const PALETTE = ["#3b5bdb", "#f08c00", "#2b8a3e", "#e64980", "#7048e8", "#1098ad", "#c92a2a", "#5c940d"];

interface Props {
  x: number[];
  series: Series[];
  height?: number;
  time?: boolean; // x holds epoch seconds
  xLabel?: string;
  format?: (v: number) => string;
}

/** A line chart (uPlot, canvas-based: thousands of points stay smooth). */
export function LineChart({ x, series, height = 200, time = false, xLabel, format }: Props) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const dark = document.documentElement.dataset.theme === "dark";
    const axisColor = dark ? "#9aa4b2" : "#57606a";
    const grid = { stroke: dark ? "#333945" : "#eceef2", width: 1 };
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      scales: { x: { time } },
      series: [
        { label: xLabel ?? (time ? "time" : "step") },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color ?? PALETTE[i % PALETTE.length],
          width: 2,
          spanGaps: true,
          points: { show: x.length < 60 },
          value: format ? (_: uPlot, v: number | null) => (v === null ? "–" : format(v)) : undefined,
        })),
      ],
      axes: [
        { stroke: axisColor, grid },
        { stroke: axisColor, grid, size: 60, values: format ? (_: uPlot, vals: number[]) => vals.map(format) : undefined },
      ],
      legend: { show: true },
    };
    const plot = new uPlot(opts, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 200), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [x, series, height, time, xLabel, format]);
  return <div className="chart" ref={ref} />;
}

/** Align several (x, y) series on the union of their x values, as uPlot wants. */
export function alignSeries(
  input: { label: string; points: [number, number][] }[],
): { x: number[]; series: Series[] } {
  const xs = [...new Set(input.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const series = input.map((s) => {
    const values: (number | null)[] = new Array(xs.length).fill(null);
    for (const [x, y] of s.points) values[index.get(x)!] = y;
    return { label: s.label, values };
  });
  return { x: xs, series };
}
