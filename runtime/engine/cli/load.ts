import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDag, type Dag } from '../dag.ts';
import { UsageError } from '../scheduler.ts';

const BUNDLE = Symbol.for('agentforge.bundle');

/** Loads `export default dag(...)` from a module path, or from dags/<name>.ts when given a bare name. */
export async function loadDag(spec: string): Promise<{ dag: Dag; file: string }> {
  const candidates = [spec, `dags/${spec}.ts`, `dags/${spec}`].map((p) => resolve(p));
  const file = candidates.find((p) => existsSync(p));
  if (!file) throw new UsageError(`no DAG module at '${spec}' (tried ${candidates.join(', ')})`);
  let mod: { default?: unknown };
  try {
    // Under bin/agentforge.mjs the DAG module is a lazy chunk of the CLI bundle (runtime/engine/cli/bundle.mjs).
    const bundled = (globalThis as { [BUNDLE]?: { dags: Record<string, () => Promise<{ default?: unknown }>> } })[BUNDLE]?.dags[file];
    mod = await (bundled ? bundled() : import(pathToFileURL(file).href));
  } catch (e) {
    const err = e as Error;
    throw new UsageError(`DAG module ${file} failed to import: ${err.message}\n${(err.stack ?? '').split('\n').slice(1, 6).join('\n')}`);
  }
  if (!isDag(mod.default)) throw new UsageError(`DAG module ${file} must \`export default dag('name', (d) => …)\``);
  return { dag: mod.default, file };
}
