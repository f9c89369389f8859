import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../runtime/engine/rng.ts';
import { unifiedDiff } from '../../runtime/worlds/repo/diff.ts';

describe('repo patches are unified diffs that patch(1) applies', () => {
  it('random edits (insertions at the start and end, deletions, several hunks, whole-file rewrites) round-trip through `patch -p1`', () => {
    const r = new Rng(7);
    const before: Record<string, string> = {};
    const after: Record<string, string> = {};
    for (let f = 0; f < 40; f++) {
      const lines = Array.from({ length: r.int(0, 30) }, (_, i) => `line ${i} ${r.int(0, 3)}`);
      const changed = [...lines];
      for (let k = r.int(1, 5); k > 0; k--) {
        const at = r.int(0, changed.length);
        const op = r.int(0, 2);
        if (op === 0) changed.splice(at, 0, `new ${f}.${k}`);
        else if (op === 1 && changed.length) changed.splice(Math.min(at, changed.length - 1), 1);
        else if (changed.length) changed[Math.min(at, changed.length - 1)] += ' edited';
      }
      before[`pkg/f${f}.py`] = lines.length ? `${lines.join('\n')}\n` : '';
      after[`pkg/f${f}.py`] = changed.length ? `${changed.join('\n')}\n` : '';
    }
    const diff = unifiedDiff(before, after);
    const dir = mkdtempSync(join(tmpdir(), 'af-diff-'));
    try {
      spawnSync('mkdir', ['-p', join(dir, 'pkg')]);
      for (const [p, t] of Object.entries(before)) writeFileSync(join(dir, p), t);
      const res = spawnSync('patch', ['-p1', '--batch', '--force'], { cwd: dir, input: diff, encoding: 'utf8' });
      expect(res.status, res.stdout + res.stderr).toBe(0);
      for (const [p, t] of Object.entries(after)) expect(readFileSync(join(dir, p), 'utf8'), p).toBe(t);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(unifiedDiff(before, before)).toBe('');
  });
});
