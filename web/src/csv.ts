// CSV made in the browser, for answers that are not a GET list (bulk search).

/**
 * A cell a spreadsheet would run as a formula (starting with = + - @ tab or carriage return) gets a
 * leading ': a sender address is not a program. Only a cell that is a number as a whole is exempt
 * (`-1+HYPERLINK(…)` starts with a digit too). The same rule as the server's exports
 * (elsed/src/web/api/export.rs), both tested on web/tests/csv-guard-vectors.json.
 */
export function guardFormula(s: string): string {
  return /^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
}

export function csvOf(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '';
  const keys = Object.keys(rows[0]);
  const cell = (v: unknown) => {
    const raw = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    const s = guardFormula(raw);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [keys.join(','), ...rows.map((r) => keys.map((k) => cell(r[k])).join(','))].join('\r\n') + '\r\n';
}

export function downloadText(name: string, text: string, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
