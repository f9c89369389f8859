/*
 * Replacing a committed artifact (--force / --from) must never leave its ledger row without files: the old folder
 * is moved aside until the new one is in place, and a store opened after a kill in between puts it back.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../storage/store.ts';

const KEY = 'ab'.repeat(16);
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function stage(store: Store, text: string): string {
  const d = store.tempDir('stage');
  writeFileSync(join(d, 'data.parquet'), text);
  return d;
}

describe('Store.publish replacing a committed artifact', () => {
  it('swaps the folder in and leaves nothing aside', () => {
    const dir = mkdtempSync(join(tmpdir(), 'af-publish-'));
    dirs.push(dir);
    const store = new Store(dir);
    const first = store.publish(stage(store, 'old'), KEY);
    const second = store.publish(stage(store, 'new'), KEY);
    expect(readFileSync(join(store.artifactDir(KEY), 'data.parquet'), 'utf8')).toBe('new');
    expect(second[0].sha256).not.toBe(first[0].sha256);
    expect(readdirSync(join(dir, 'tmp')).filter((n) => n.includes('replaced'))).toEqual([]);
  });

  it('a store opened after a kill between moving aside and renaming in restores the committed files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'af-publish-'));
    dirs.push(dir);
    const store = new Store(dir);
    const files = store.publish(stage(store, 'committed'), KEY);
    const dead = spawnSync(process.execPath, ['-e', '']).pid!; // a pid whose process has exited
    const aside = join(dir, 'tmp', `${dead}-replaced-${KEY}`);
    renameSync(store.artifactDir(KEY), aside); // the state a SIGKILL inside publish() leaves
    const reopened = new Store(dir);
    expect(() => reopened.verify(KEY, files, 'episodes')).not.toThrow();
    expect(existsSync(aside)).toBe(false);
  });

  it('leaves a live process’s folder alone, and never overwrites an artifact that exists', () => {
    const dir = mkdtempSync(join(tmpdir(), 'af-publish-'));
    dirs.push(dir);
    const store = new Store(dir);
    store.publish(stage(store, 'current'), KEY);
    const mine = join(dir, 'tmp', `${process.pid}-replaced-${KEY}`);
    renameSync(stage(store, 'old'), mine);
    new Store(dir);
    expect(existsSync(mine)).toBe(true);
    expect(readFileSync(join(store.artifactDir(KEY), 'data.parquet'), 'utf8')).toBe('current');
  });
});
