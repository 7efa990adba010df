import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Served by Tenantry at /dashboard/ under a CSP that allows scripts and styles from self only:
// no inline script or style, no module-preload polyfill (it is an inline script).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/dashboard/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: 'es2022',
  },
});
