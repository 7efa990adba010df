/**
 * What a connection list may show of a query: literals replaced by `?` (values may be
 * personal data or secrets), whitespace folded, then cut to `max` characters. Masking
 * happens before cutting, so a cut never exposes the start of a literal.
 */
export function maskQuery(query: string | null | undefined, max = 100): string | null {
  if (query == null) return null;
  const masked = query
    // dollar-quoted strings: $$...$$ and $tag$...$tag$
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)?\$[\s\S]*?\$\1\$/g, '?')
    // string literals, with E'', B'', X'', U&'' prefixes and '' escapes; an unterminated one runs to the end
    .replace(/(?:\b[EeBbXx]|\b[Uu]&)?'(?:[^']|'')*(?:'|$)/g, '?')
    // numbers not part of an identifier or a $1 parameter
    .replace(/(?<![\w$.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])/g, '?')
    .replace(/\s+/g, ' ')
    .trim();
  return masked.length > max ? `${masked.slice(0, max - 1)}…` : masked;
}
