import { createElement, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/** Routes are paths under /dashboard/ (the server answers index.html for them): /dashboard/tenants/<slug>. */
export const HOME = '/dashboard/';
export const tenantPath = (slug: string): string => `${HOME}tenants/${encodeURIComponent(slug)}`;

export function navigate(to: string): void {
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
}

/** The path now, following navigate() and the browser's back and forward. */
export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const changed = () => setPath(location.pathname);
    addEventListener('popstate', changed);
    return () => removeEventListener('popstate', changed);
  }, []);
  return path;
}

/** A link that navigates in the page (a modified click still opens a new tab). */
export function Link({ to, children, ...rest }: { to: string; children: ComponentChildren; class?: string; 'data-testid'?: string }) {
  return createElement('a', {
    ...rest,
    href: to,
    onClick: (e: MouseEvent) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(to);
    },
  }, children);
}
