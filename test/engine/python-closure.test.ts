import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pythonModuleClosure } from '../../runtime/engine/fingerprint.ts';

const root = mkdtempSync(join(tmpdir(), 'af-pyclosure-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
function write(files: Record<string, string>) {
  for (const [f, src] of Object.entries(files)) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    writeFileSync(join(root, f), src);
  }
}

write({
  'pkg/__init__.py': '',
  'pkg/entry.py': [
    'from __future__ import annotations',
    'import os, json',
    'import pkg.absolute',
    'from . import sibling  # a comment',
    'from .sub import (',
    '    leaf,',
    '    helper as h,',
    ')',
    'from pkg.other import thing',
    'def f():',
    '    from .lazy import x  # imported inside a function still counts',
  ].join('\n'),
  'pkg/absolute.py': '',
  'pkg/sibling.py': 'from .sub.deep import y\n',
  'pkg/sub/__init__.py': 'from .leaf import z\n',
  'pkg/sub/leaf.py': '',
  'pkg/sub/helper.py': '',
  'pkg/sub/deep.py': 'from ..unused_name_only import nothing\n',
  'pkg/other.py': '',
  'pkg/lazy.py': '',
  'pkg/unrelated.py': '',
  'pkg/tests/test_x.py': 'from pkg.entry import f\n',
});

describe('pythonModuleClosure', () => {
  it('follows relative, absolute, parenthesised and function-level imports within the package', () => {
    const got = pythonModuleClosure(join(root, 'pkg/entry.py')).map((f) => relative(root, f));
    expect(got).toEqual(['pkg/__init__.py', 'pkg/absolute.py', 'pkg/entry.py', 'pkg/lazy.py', 'pkg/other.py', 'pkg/sibling.py',
      'pkg/sub/__init__.py', 'pkg/sub/deep.py', 'pkg/sub/helper.py', 'pkg/sub/leaf.py'].sort());
  });

  it('a module that imports nothing of its package is alone with the package __init__', () => {
    expect(pythonModuleClosure(join(root, 'pkg/unrelated.py')).map((f) => relative(root, f))).toEqual(['pkg/__init__.py', 'pkg/unrelated.py']);
  });
});
