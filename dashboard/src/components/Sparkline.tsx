/** A small SVG line of values against a ceiling (the quota). */
export function Sparkline({ values, max, testId }: { values: number[]; max: number; testId?: string }) {
  const width = 100;
  const height = 24;
  if (values.length < 2) return <svg class="sparkline" data-testid={testId} width={width} height={height} />;
  const top = Math.max(max, ...values, 1);
  const points = values.map((v, i) => `${((i / (values.length - 1)) * width).toFixed(1)},${(height - (v / top) * (height - 2) - 1).toFixed(1)}`).join(' ');
  return (
    <svg class="sparkline" data-testid={testId} width={width} height={height} viewBox={`0 0 ${width} ${height}`}>
      <polyline points={points} />
    </svg>
  );
}
