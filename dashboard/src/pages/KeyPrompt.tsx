import { useState } from 'preact/hooks';

/** The API key, pasted once; kept in sessionStorage (this tab, this browser session) only. */
export function KeyPrompt({ reason, onKey }: { reason: string | null; onKey: (key: string) => void }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="key-prompt"
      data-testid="key-prompt"
      onSubmit={(e) => {
        e.preventDefault();
        const key = value.trim().replace(/^Bearer\s+/i, '');
        if (key) onKey(key);
      }}
    >
      <h1>Tenantry</h1>
      <label>
        API key
        <input type="password" autocomplete="off" placeholder="tnry_…" value={value} onInput={(e) => setValue(e.currentTarget.value)} data-testid="key-input" />
      </label>
      <p class="hint">Kept for this browser session only, sent to this server alone.</p>
      {reason && (
        <p class="error" role="alert" data-testid="key-error">
          {reason}
        </p>
      )}
      <button type="submit" data-testid="key-submit">
        Open
      </button>
    </form>
  );
}
