import { describe, expect, it } from 'vitest';
import { codeFiles } from '../../runtime/fingerprint.ts';
import { trainSft } from '../../operators/train-sft.ts';
import { trainRl } from '../../operators/train-rl.ts';
import { merge } from '../../operators/merge.ts';

describe('node operators key on the node package, not its tests or benchmarks', () => {
  for (const op of [trainSft, trainRl, merge]) {
    it(op.name, () => {
      const files = Object.keys(codeFiles(op.module, op.codeDeps));
      expect(files).toContain('runtime/gpu/agentforge_node/sft.py');
      expect(files).toContain('runtime/gpu/agentforge_node/merge/kernels.py');
      expect(files).toContain('runtime/gpu/requirements.txt');
      expect(files).toContain('runtime/gpu/client.ts');
      expect(files.filter((f) => f.startsWith('runtime/gpu/tests/') || f.startsWith('runtime/gpu/bench/'))).toEqual([]);
    });
  }
});
