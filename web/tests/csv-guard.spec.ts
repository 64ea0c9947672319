// The browser's CSV formula guard on the vectors the server's guard is tested on
// (elsed/src/web/api/export.rs): one rule for every export. Runs in Node, no page needed.

import { expect, test } from '@playwright/test';
import * as fs from 'node:fs';
import { csvOf, guardFormula } from '../src/csv';

const file = JSON.parse(fs.readFileSync(new URL('csv-guard-vectors.json', import.meta.url), 'utf8'));
const vectors: [string, string][] = file.vectors;

test('the formula guard matches the shared vectors', () => {
  expect(vectors.length).toBeGreaterThan(10);
  for (const [cell, expected] of vectors) {
    expect(guardFormula(cell), JSON.stringify(cell)).toBe(expected);
  }
});

test('the bulk export guards its cells', () => {
  const text = csvOf([{ sender: '-1+HYPERLINK("http://x")', size: -12 }]);
  expect(text).toBe('sender,size\r\n"\'-1+HYPERLINK(""http://x"")",-12\r\n');
});
