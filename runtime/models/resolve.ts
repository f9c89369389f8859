/*
 * A `base` model spec — a local Hugging Face dir, a hub repo + revision, or a GGUF file — checked and resolved to
 * what it names: the local dir's file hashes, the hub's commit sha, the GGUF's hash and header. Every check that can
 * run without downloading runs in `resolveBaseKey` (the operator's fingerprint, computed before any node runs); the
 * rest (the downloaded snapshot's files and template) in `materialize`. Whatever the source, the result is a Hugging
 * Face dir: a GGUF is dequantized by the runtime node's convert-gguf (transformers' GGUF loading) into safetensors +
 * config + tokenizer + its template as chat_template.jinja. A model type the ONNX exporter cannot export (the TS
 * engines decode only that) is refused here too, so it fails before any training.
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { runNode, type NodeEvent } from '../node/client.ts';
import { ConvertGgufResult, ONNX_MODEL_TYPES } from '../node/protocol.ts';
import { checkDequantizable, readGgufHeader, type GgufHeader } from './gguf.ts';
import { cachedRevision, downloadSnapshot, HubError, repoCacheDir, resolveHubRevision, type DownloadReport, type HubOptions } from './hub.ts';
import { resolveHubRevisionSync } from './hub-sync.ts';
import { dirHashes, fileSha256, listFilesRecursive, modelDirProblems } from './local.ts';

export const BaseSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('path'), dir: z.string().min(1) }),
  z.object({ kind: z.literal('hub'), repo: z.string().min(1), revision: z.string().min(1).default('main') }),
  z.object({ kind: z.literal('gguf'), file: z.string().min(1) }),
]);
export type BaseSpec = z.output<typeof BaseSpec>;

export const describeBase = (b: BaseSpec): string =>
  b.kind === 'path' ? `model dir ${resolve(b.dir)}` : b.kind === 'hub' ? `${b.repo}@${b.revision}` : `GGUF ${resolve(b.file)}`;

/** Weights in other formats than the pipeline loads: not downloaded. */
export function wantedHubFile(path: string): boolean {
  return !/(^|\/)(onnx|openvino|coreml)\//.test(path) && !/\.(gguf|h5|msgpack|ot|mlmodel|tflite)$/.test(path) &&
    !/^(tf_model|flax_model|rust_model)/.test(basename(path));
}

/**
 * Refuses a template that cannot train tool use (the chat-template layer sits above this one, so the caller passes
 * its check: loadChatTokenizer's probe render). Throws an error naming the model and the fix.
 */
export type TemplateCheck = (dir: string, chatTemplate: string | null) => void;
/** The same for a template without its tokenizer (a GGUF's): `source` is the template, `where` names it. */
export type TemplateTextCheck = (source: string, where: string, override: boolean) => void;
type Checks = { checkTemplate?: TemplateCheck; checkTemplateText?: TemplateTextCheck };
/** How materialize runs the runtime node (GGUF conversion): cancellation and the node's events. */
export type NodeRun = { node?: { signal?: AbortSignal; onEvent?: (e: NodeEvent) => void; python?: string } };

/** Refuses a model type the exporter cannot handle: training it would end in an export that fails. */
export function checkModelType(modelType: unknown, what: string): void {
  if (typeof modelType === 'string' && (ONNX_MODEL_TYPES as readonly string[]).includes(modelType)) return;
  throw new Error(`${what} is a '${String(modelType)}' model; the ONNX exporter (and so the rollout engines) supports ` +
    `${ONNX_MODEL_TYPES.join(', ')}: pick a model of one of those architectures`);
}

function configModelType(dir: string): unknown {
  try {
    return (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { model_type?: unknown }).model_type;
  } catch {
    return undefined;
  }
}

function localProblems(dir: string, what: string, chatTemplate: string | null, checkTemplate?: TemplateCheck): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${what} does not exist or is not a directory; pass the path of a Hugging Face model dir`);
  const problems = modelDirProblems(dir).filter((p) => !(chatTemplate && p.startsWith('no chat template')));
  if (problems.length) throw new Error(`${what} is not usable:\n  - ${problems.join('\n  - ')}`);
  checkModelType(configModelType(dir), what);
  try {
    checkTemplate?.(dir, chatTemplate);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}

function checkGguf(file: string, chatTemplate: string | null, check?: TemplateTextCheck): GgufHeader {
  const header = readGgufHeader(file);
  checkDequantizable(file, header);
  checkModelType(header.architecture, `GGUF ${file}`);
  if (!header.chatTemplate && !chatTemplate) {
    throw new Error(`GGUF ${file} has no chat template (tokenizer.chat_template); pass one as params.chat_template`);
  }
  check?.(chatTemplate ?? header.chatTemplate!, chatTemplate ? `the chat_template param (for GGUF ${file})` : `the chat template of GGUF ${file}`, !!chatTemplate);
  return header;
}

/** Key material for a base spec (sync, before anything runs); throws a clear error for a bad input. */
export function resolveBaseKey(b: BaseSpec, chatTemplate: string | null, o: HubOptions & Checks = {}): unknown {
  if (b.kind === 'path') {
    const dir = resolve(b.dir);
    localProblems(dir, `model dir ${dir}`, chatTemplate, o.checkTemplate);
    return { kind: 'path', files: dirHashes(dir) };
  }
  if (b.kind === 'gguf') {
    const file = resolve(b.file);
    const header = checkGguf(file, chatTemplate, o.checkTemplateText);
    return { kind: 'gguf', sha256: fileSha256(file), types: header.types };
  }
  if (offline(o)) return { kind: 'hub', repo: b.repo, sha: offlineRevision(b.repo, b.revision, o) };
  try {
    return { kind: 'hub', repo: b.repo, sha: resolveHubRevisionSync(b.repo, b.revision, o).sha };
  } catch (e) {
    // offline: the commit the revision pointed to when it was downloaded
    const cached = e instanceof HubError && e.code === 'other' ? cachedRevision(b.repo, b.revision, o) : null;
    if (cached) return { kind: 'hub', repo: b.repo, sha: cached };
    throw e;
  }
}

/** HF_HUB_OFFLINE=1: never ask the hub; revisions come from the cache's refs (as huggingface_hub does). */
const offline = (o: HubOptions): boolean => ['1', 'true', 'yes', 'on'].includes(((o.env ?? process.env).HF_HUB_OFFLINE ?? '').toLowerCase());

function offlineRevision(repo: string, revision: string, o: HubOptions): string {
  const sha = cachedRevision(repo, revision, o);
  if (!sha) throw new HubError(`HF_HUB_OFFLINE is set and ${repo}@${revision} is not in the Hugging Face cache (${repoCacheDir(repo, o)}); download it once online, or unset HF_HUB_OFFLINE`, 'other');
  return sha;
}

/** A new file at `path`, never written through a hard link into someone else's inode (a hub blob). */
function writeFresh(path: string, text: string): void {
  rmSync(path, { force: true });
  writeFileSync(path, text);
}

/**
 * Copies a model dir's files into the store. Hub blobs are immutable, so they are hard-linked when the store is on
 * the same file system (a 16 GB model costs no second 16 GB); a user's own dir is copied, since it may be edited in place.
 */
function storeFiles(dir: string, out: string, link: boolean): void {
  for (const f of listFilesRecursive(dir)) {
    const src = realpathSync(join(dir, f));
    const dst = join(out, f);
    mkdirSync(dirname(dst), { recursive: true });
    if (link) {
      try { linkSync(src, dst); continue; } catch { /* another file system: copy */ }
    }
    copyFileSync(src, dst);
  }
}

export interface Materialized { source: Record<string, unknown>; log: string[] }

/** Writes the model named by `b` into `out` (a store dir): files, the template override, and source.json. */
export async function materialize(b: BaseSpec, chatTemplate: string | null, out: string, o: HubOptions & Checks & NodeRun = {}): Promise<Materialized> {
  const log: string[] = [];
  let source: Record<string, unknown>;
  if (b.kind === 'gguf') {
    const file = resolve(b.file);
    const header = checkGguf(file, chatTemplate, o.checkTemplateText);
    // dequantized once, here: the store keeps the Hugging Face dir, not the GGUF
    const res = await runNode('convert-gguf', { gguf_file: file, out_dir: out, chat_template: chatTemplate },
      { signal: o.node?.signal, onEvent: o.node?.onEvent, python: o.node?.python, result: ConvertGgufResult });
    localProblems(out, `the Hugging Face dir converted from GGUF ${file}`, chatTemplate, o.checkTemplate);
    source = { kind: 'gguf', file, sha256: fileSha256(file), version: header.version, architecture: header.architecture, name: header.name,
      tensor_types: header.types, model_class: res.model_class, num_parameters: res.num_parameters };
    log.push(`GGUF ${file}: ${header.architecture ?? 'unknown architecture'}, ${header.tensors.length} tensors (${Object.entries(header.types).map(([t, n]) => `${t} ${n}`).join(', ')}) ` +
      `dequantized to a ${res.model_class} (${res.num_parameters} parameters) in ${res.seconds.toFixed(1)} s`);
  } else {
    let dir: string;
    if (b.kind === 'path') {
      dir = resolve(b.dir);
      source = { kind: 'path', dir };
    } else {
      let sha: string;
      let report: DownloadReport | null = null;
      try {
        if (offline(o)) throw new HubError('HF_HUB_OFFLINE is set', 'other');
        const r = await resolveHubRevision(b.repo, b.revision, o);
        sha = r.sha;
        report = await downloadSnapshot(r, { ...o, only: wantedHubFile });
        dir = report.snapshot;
      } catch (e) {
        const cached = e instanceof HubError && e.code === 'other' ? cachedRevision(b.repo, b.revision, o) : null;
        if (!cached) throw offline(o) ? new HubError(`HF_HUB_OFFLINE is set and ${b.repo}@${b.revision} is not in the Hugging Face cache; download it once online, or unset HF_HUB_OFFLINE`, 'other') : e;
        sha = cached;
        dir = join(repoCacheDir(b.repo, o), 'snapshots', cached);
        log.push(`${b.repo}: hub unreachable (${(e as Error).message}); using the cached snapshot ${cached}`);
      }
      source = { kind: 'hub', repo: b.repo, revision: b.revision, sha, snapshot: dir };
      if (report) log.push(`${b.repo}@${b.revision} = ${sha}: ${report.files} files, ${report.downloaded} downloaded (${report.bytes} bytes, ${report.resumed} resumed)`);
    }
    localProblems(dir, b.kind === 'path' ? `model dir ${dir}` : `${b.repo}@${b.revision} (snapshot ${dir})`, chatTemplate, o.checkTemplate);
    // dereference: hub snapshots are symlinks into blobs/, and the store must own real files
    storeFiles(dir, out, b.kind === 'hub');
    if (chatTemplate) writeFresh(join(out, 'chat_template.jinja'), chatTemplate);
    // hub files are named by their checksum already (the blob a snapshot entry links to): no second hashing pass
    source.files = b.kind === 'hub' ? listFilesRecursive(dir).map((f) => [f, basename(realpathSync(join(dir, f)))]) : dirHashes(dir);
  }
  source.chat_template = chatTemplate ? 'override' : 'own';
  writeFresh(join(out, 'source.json'), `${JSON.stringify(source, null, 1)}\n`);
  return { source, log };
}
