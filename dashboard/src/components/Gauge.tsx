import { levelOf } from '../format.ts';

/** A usage bar; data-level is ok (< 70 %), warn (70–90 %) or critical (> 90 %). */
export function Gauge({ percent, testId }: { percent: number; testId?: string }) {
  const level = levelOf(percent);
  return (
    <div class="gauge" data-level={level} data-testid={testId} title={`${percent.toFixed(0)} %`}>
      <div class="gauge-fill" style={{ width: `${Math.min(100, Math.max(0, percent))}%` }} />
      <span class="gauge-label">{percent.toFixed(0)} %</span>
    </div>
  );
}
