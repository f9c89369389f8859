/*
 * Publishing to the Hugging Face Hub through @huggingface/hub: a model card (front matter, eval tables, the
 * artifact's lineage read from the store's manifests) and a commit of a folder's files. Large files go through the
 * library's LFS/xet upload (it asks the server's LFS batch endpoint which transfer to use).
 */
import { commit, createRepo, type CommitOperation } from '@huggingface/hub';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HubError, hubEndpoint, hubFailure, hubToken, REPO_ID, type HubOptions } from './hub.ts';
import { listFilesRecursive } from './local.ts';

export interface LineageStep { key: string; node: string; op: string; version: number; committed_at: string; inputs: { input: string; parent: string }[] }

const MANIFEST = '.agentforge-manifest.json';

/** The artifacts an artifact was made from, newest first, from the MANIFEST each store folder carries. */
export function lineageOf(storeDir: string, key: string): LineageStep[] {
  const seen = new Set<string>();
  const out: LineageStep[] = [];
  const queue = [key];
  while (queue.length) {
    const k = queue.shift()!;
    if (seen.has(k)) continue;
    seen.add(k);
    const path = join(storeDir, 'artifacts', k, MANIFEST);
    if (!existsSync(path)) continue;
    const m = JSON.parse(readFileSync(path, 'utf8')) as { artifact: { key: string; node_id: string; op: string; version: number }; lineage: { input: string; parent: string }[]; committed_at: string };
    out.push({ key: k, node: m.artifact.node_id, op: m.artifact.op, version: m.artifact.version, committed_at: m.committed_at, inputs: m.lineage });
    for (const l of m.lineage) queue.push(l.parent);
  }
  return out;
}

/** The base model named by a resolve-model artifact in the lineage (its source.json), if any. */
export function baseModelOf(storeDir: string, steps: LineageStep[]): Record<string, unknown> | null {
  for (const s of [...steps].reverse()) {
    const p = join(storeDir, 'artifacts', s.key, 'source.json');
    if (s.op === 'resolve-model' && existsSync(p)) return JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  }
  return null;
}

export interface CardTable { title: string; columns: string[]; rows: (string | number)[][] }

const cell = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v.replace(/\|/g, '\\|').replace(/\n/g, ' '));

export function markdownTable(t: CardTable): string {
  return [`| ${t.columns.join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

/** README.md for the pushed model: front matter the hub indexes, eval tables, lineage. */
export function modelCard(o: { repo: string; base: Record<string, unknown> | null; dataset: string | null; tables: CardTable[]; lineage: LineageStep[]; description?: string }): string {
  const front = ['---', 'library_name: transformers', 'pipeline_tag: text-generation', 'tags:', '- agentforge', '- tool-use'];
  if (o.base?.kind === 'hub') front.push(`base_model: ${String(o.base.repo)}`);
  if (o.dataset) front.push('datasets:', `- ${o.dataset}`);
  front.push('---');
  const baseLine = o.base?.kind === 'hub' ? `[${String(o.base.repo)}](https://huggingface.co/${String(o.base.repo)}) at commit \`${String(o.base.sha)}\``
    : o.base?.kind === 'gguf' ? `the GGUF file ${String(o.base.file)} (sha256 \`${String(o.base.sha256)}\`)`
      : o.base?.kind === 'path' ? `a local model directory (${String(o.base.dir)})` : 'a model trained from scratch by the recipe';
  const parts = [front.join('\n'), '', `# ${o.repo.split('/')[1]}`, '', o.description ?? 'A tool-using agent model trained with the agentforge recipe (synthesis → SFT → multi-turn RL → merging).', '', `Base model: ${baseLine}.`];
  if (o.dataset) parts.push('', `Trajectories: [${o.dataset}](https://huggingface.co/datasets/${o.dataset}).`);
  parts.push('', '## Evaluation');
  if (!o.tables.length) parts.push('', 'No evaluation was wired into the push.');
  for (const t of o.tables) parts.push('', `### ${t.title}`, '', markdownTable(t));
  parts.push('', '## Lineage', '', 'The artifacts this model was made from (agentforge store keys, newest first):', '',
    markdownTable({ title: '', columns: ['node', 'operator', 'key', 'inputs', 'committed'], rows: o.lineage.map((s) => [s.node, `${s.op} v${s.version}`, s.key, s.inputs.map((i) => `${i.input} ← ${i.parent}`).join(', ') || '—', s.committed_at]) }));
  return `${parts.join('\n')}\n`;
}

export interface PushResult { repo: string; type: 'model' | 'dataset'; commit: string; url: string; files: number; created: boolean }

/**
 * Commits `files` (repo path → local file or text) to `repo`, creating the repo when it does not exist.
 * Needs a token (HF_TOKEN); fails before uploading anything without one.
 */
export async function pushFiles(repo: string, type: 'model' | 'dataset', files: Record<string, string | { text: string }>, o: HubOptions & { private?: boolean; branch?: string; title: string }): Promise<PushResult> {
  if (!REPO_ID.test(repo)) throw new HubError(`'${repo}' is not a hub repo id; write it as org/name`, 'other');
  const token = hubToken(o);
  if (!token) throw new HubError(`pushing to ${repo} needs a write token: set HF_TOKEN`, 'unauthorized');
  const hubUrl = hubEndpoint(o);
  const designation = { type, name: repo } as const;
  let created = false;
  try {
    await createRepo({ repo: designation, accessToken: token, hubUrl, private: o.private ?? true });
    created = true;
  } catch (e) {
    const err = e as { statusCode?: number; message: string };
    if (err.statusCode !== 409) throw writeFailure(repo, err);
  }
  const operations: CommitOperation[] = Object.entries(files).map(([path, f]) => ({
    operation: 'addOrUpdate', path, content: typeof f === 'string' ? pathToFileURL(f) : new Blob([f.text]),
  }));
  try {
    const r = await commit({ repo: designation, operations, title: o.title, accessToken: token, hubUrl, branch: o.branch ?? 'main' });
    if (!r?.commit.oid) throw new HubError(`${repo}: the hub accepted the commit without a commit id`, 'other');
    return { repo, type, commit: r.commit.oid, url: r.commit.url, files: operations.length, created };
  } catch (e) {
    if (e instanceof HubError) throw e;
    throw writeFailure(repo, e as { statusCode?: number; message: string });
  }
}

function writeFailure(repo: string, err: { statusCode?: number; message: string }): HubError {
  if (err.statusCode === 401 || err.statusCode === 403) {
    return new HubError(`the hub refused to let this token write to ${repo} (HTTP ${err.statusCode}); set HF_TOKEN to a token with write access to ${repo.split('/')[0]}`, 'unauthorized');
  }
  return hubFailure(repo, 'main', { status: err.statusCode, message: err.message }, true);
}

/** repo path → local path for every file of a model dir (dotfiles such as the store manifest left out). */
export function folderFiles(dir: string): Record<string, string> {
  return Object.fromEntries(listFilesRecursive(dir).map((f) => [f, join(dir, f)]));
}
