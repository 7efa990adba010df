import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series { label: string; values: (number | null)[]; color: string; dashed?: boolean; step?: boolean }

/** A uPlot time series chart; times in seconds since the epoch. */
/** `seconds`: the window shown, ending now (a fresh tenant's single point would otherwise fill the axis). */
export function TimeChart({ times, series, testId, height = 220, seconds }: { times: number[]; series: Series[]; testId?: string; height?: number; seconds?: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const stepped = uPlot.paths.stepped?.({ align: 1 });
    const chart = new uPlot(
      {
        width: Math.max(320, el.clientWidth || 600),
        height,
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, dash: s.dashed ? [6, 4] : undefined, paths: s.step ? stepped : undefined }))],
        axes: [{}, { size: 50 }],
        scales: {
          x: seconds ? { time: true, range: () => [Date.now() / 1000 - seconds, Date.now() / 1000] } : { time: true },
          y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] },
        },
      },
      [times, ...series.map((s) => s.values)] as uPlot.AlignedData,
      el,
    );
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(320, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
  }, [times, series, height, seconds]);
  return <div class="chart" data-testid={testId} ref={box} />;
}

/**
 * A step chart of per-minute points: fetched by `load` (again whenever `deps` change; a late
 * answer to an earlier fetch is dropped), held until now, with its own loading and error states.
 */
export function MinuteChart<P extends { minuteStartAt: string }>({ load, deps, series, seconds }: { load: () => Promise<P[]>; deps: unknown[]; series: (points: P[]) => Series[]; seconds: number }) {
  const [points, setPoints] = useState<P[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    setPoints(null);
    setError(null);
    load().then(
      (p) => current && setPoints(p),
      (err: Error) => current && setError(err.message),
    );
    return () => {
      current = false;
    };
  }, deps);
  const data = useMemo(() => {
    if (!points) return null;
    const all = heldUntilNow(points);
    return { times: all.map((p) => Date.parse(p.minuteStartAt) / 1000), series: series(all) };
  }, [points]);
  if (error) return <p class="error" role="alert">{error}</p>;
  return data ? <TimeChart times={data.times} series={data.series} seconds={seconds} /> : <p>Loading…</p>;
}

/** The points with the last one repeated at now: a step chart then reaches the present (the last minute's value holds). */
function heldUntilNow<P extends { minuteStartAt: string }>(points: readonly P[]): P[] {
  const last = points[points.length - 1];
  return last ? [...points, { ...last, minuteStartAt: new Date().toISOString() }] : [...points];
}
