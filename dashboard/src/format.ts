/** green < 70 %, yellow 70–90 %, red > 90 % */
export type Level = 'ok' | 'warn' | 'critical';
export const levelOf = (percent: number): Level => (percent > 90 ? 'critical' : percent >= 70 ? 'warn' : 'ok');

/** "5 min 32 s", "2 h 3 min", "12 s" */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export const when = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleString() : '—');

export function ago(iso: string): string {
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  return seconds < 60 ? 'just now' : `${duration(seconds).split(' ').slice(0, 2).join(' ')} ago`;
}

/** ↑ ↓ → from the slope of recent values (a change under 5 % of the quota is flat). */
export function trendOf(values: number[], max: number): '↑' | '↓' | '→' {
  if (values.length < 2) return '→';
  const recent = values.slice(-5);
  const delta = recent[recent.length - 1]! - recent[0]!;
  const threshold = Math.max(1, max * 0.05);
  return delta >= threshold ? '↑' : delta <= -threshold ? '↓' : '→';
}

export const maybe = (n: number | null | undefined): string => (n === null || n === undefined ? '–' : String(n));

/** "ADMIN_API_KEY (apikey:…)" → "ADMIN_API_KEY": the key's name, its id on hover. */
export const who = (actor: string): string => actor.replace(/ \(.*\)$/, '');
