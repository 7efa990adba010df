import { useEffect, useRef } from 'preact/hooks';
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

/** The points with the last one repeated at now: a step chart then reaches the present (the last minute's value holds). */
export function heldUntilNow<P extends { minuteStartAt: string }>(points: readonly P[]): P[] {
  const last = points[points.length - 1];
  return last ? [...points, { ...last, minuteStartAt: new Date().toISOString() }] : [...points];
}
