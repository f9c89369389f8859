/*
 * A Hugging Face Hub look-alike on 127.0.0.1 for tests: the endpoints @huggingface/hub calls (read from its
 * source: model-info, list-files, file-download-info/WebBlob, create-repo, commit: preupload, LFS batch with the
 * "basic" transfer, commit ndjson), with the hub's status codes and X-Error-Code headers for the failures the
 * operators must explain. Files over LFS_MIN bytes (and weights, Parquet) are LFS files: listed with their sha256,
 * served with X-Linked-ETag, uploaded through the LFS batch API. Range requests are honoured (resumed downloads).
 * Knobs: `gated` repos need a token; `corrupt` serves a path with one byte flipped; `cutAfter` drops the
 * connection mid-file once per path (an interrupted download).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const LFS_MIN = 64 * 1024;
const isLfs = (path: string, size: number) => size >= LFS_MIN || /\.(safetensors|parquet|gguf|bin|onnx)$/.test(path);
export const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Repo { type: 'model' | 'dataset'; gated: boolean; refs: Map<string, string>; commits: Map<string, { files: Map<string, Buffer>; title: string }> }
export interface RequestLog { method: string; url: string; range?: string; auth?: string }

export class HubServer {
  readonly repos = new Map<string, Repo>();
  readonly log: RequestLog[] = [];
  readonly lfs = new Map<string, Buffer>();
  /** Tokens the server accepts (any other Authorization is 401). */
  readonly tokens = new Set<string>(['hf_test_token', 'hf_read_only']);
  /** Tokens that may read but not create repos or commit. */
  readonly readOnly = new Set<string>(['hf_read_only']);
  corrupt = new Set<string>();
  cutAfter = new Map<string, number>();
  private server!: Server;
  url = '';

  static async start(): Promise<HubServer> {
    const h = new HubServer();
    h.server = createServer((req, res) => { h.handle(req, res).catch((e) => { res.statusCode = 500; res.end(String(e)); }); });
    await new Promise<void>((ok) => h.server.listen(0, '127.0.0.1', ok));
    h.url = `http://127.0.0.1:${(h.server.address() as AddressInfo).port}`;
    return h;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((ok) => this.server.close(() => ok()));
  }

  /** Creates or updates a repo with one commit holding `files`; returns the commit sha. */
  addRepo(name: string, files: Record<string, Buffer | string>, o: { type?: 'model' | 'dataset'; gated?: boolean; branch?: string } = {}): string {
    const key = `${o.type ?? 'model'}:${name}`;
    const repo = this.repos.get(key) ?? { type: o.type ?? 'model', gated: o.gated ?? false, refs: new Map(), commits: new Map() };
    this.repos.set(key, repo);
    const parent = repo.refs.get(o.branch ?? 'main');
    const map = new Map<string, Buffer>(parent ? repo.commits.get(parent)!.files : []);
    for (const [p, c] of Object.entries(files)) map.set(p, Buffer.isBuffer(c) ? c : Buffer.from(c));
    return this.commit(repo, map, o.branch ?? 'main', 'add files');
  }

  files(name: string, revision = 'main', type: 'model' | 'dataset' = 'model'): Map<string, Buffer> | undefined {
    const repo = this.repos.get(`${type}:${name}`);
    const sha = repo?.refs.get(revision) ?? revision;
    return repo?.commits.get(sha)?.files;
  }

  private commit(repo: Repo, files: Map<string, Buffer>, branch: string, title: string): string {
    const sha = randomBytes(20).toString('hex');
    repo.commits.set(sha, { files, title });
    repo.refs.set(branch, sha);
    return sha;
  }

  private authorized(req: IncomingMessage): 'none' | 'ok' | 'bad' {
    const a = req.headers.authorization;
    if (!a) return 'none';
    return this.tokens.has(a.replace(/^Bearer /, '')) ? 'ok' : 'bad';
  }

  /** A write endpoint: sends 401/403 and returns false unless the token may write. */
  private writable(req: IncomingMessage, res: ServerResponse): boolean {
    const auth = this.authorized(req);
    if (auth !== 'ok') { this.fail(res, 401, 'Unauthorized', 'Invalid credentials in Authorization header'); return false; }
    if (this.readOnly.has(req.headers.authorization!.replace(/^Bearer /, ''))) { this.fail(res, 403, 'Forbidden', "You don't have the rights to write to this repo"); return false; }
    return true;
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  private fail(res: ServerResponse, status: number, code: string, message: string): void {
    this.json(res, status, { error: message }, { 'X-Error-Code': code });
  }

  /** The repo and commit a (type, name, revision) names, or an error response sent. */
  private lookup(res: ServerResponse, type: string, name: string, revision: string, req: IncomingMessage) {
    const repo = this.repos.get(`${type}:${name}`);
    if (!repo) { this.fail(res, this.authorized(req) === 'ok' ? 404 : 401, 'RepoNotFound', 'Repository not found'); return null; }
    if (this.authorized(req) === 'bad') { this.fail(res, 401, 'Unauthorized', 'Invalid credentials in Authorization header'); return null; }
    const sha = repo.refs.get(revision) ?? (repo.commits.has(revision) ? revision : undefined);
    if (!sha) { this.fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${revision}`); return null; }
    return { repo, sha, files: repo.commits.get(sha)!.files };
  }

  private async body(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url!, this.url);
    const path = decodeURIComponent(u.pathname);
    this.log.push({ method: req.method!, url: path, range: req.headers.range, auth: req.headers.authorization });
    let m: RegExpMatchArray | null;

    if (req.method === 'GET' && (m = path.match(/^\/api\/(model|dataset)s\/([^/]+\/[^/]+)\/revision\/(.+)$/))) {
      const r = this.lookup(res, m[1], m[2], m[3], req);
      if (!r) return;
      this.json(res, 200, {
        _id: `id-${m[2]}`, id: m[2], sha: r.sha, private: false, gated: r.repo.gated ? 'auto' : false, downloads: 0, likes: 0,
        lastModified: new Date(0).toISOString(), pipeline_tag: 'text-generation', siblings: [...r.files.keys()].map((rfilename) => ({ rfilename })),
      });
      return;
    }
    if (req.method === 'GET' && (m = path.match(/^\/api\/(model|dataset)s\/([^/]+\/[^/]+)\/tree\/([^/]+)(\/.*)?$/))) {
      const r = this.lookup(res, m[1], m[2], m[3], req);
      if (!r) return;
      this.json(res, 200, [...r.files].map(([p, b]) => ({
        type: 'file', path: p, size: b.length, oid: gitOid(b),
        ...(isLfs(p, b.length) ? { lfs: { oid: sha256(b), size: b.length, pointerSize: 132 } } : {}),
        lastCommit: { id: r.sha, title: 'x', date: new Date(0).toISOString() },
      })));
      return;
    }
    if (req.method === 'GET' && (m = path.match(/^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/))) {
      const r = this.lookup(res, m[1] ? 'dataset' : 'model', m[2], m[3], req);
      if (!r) return;
      if (r.repo.gated && this.authorized(req) !== 'ok') { this.fail(res, 401, 'GatedRepo', `Access to model ${m[2]} is restricted. You must have access to it and be authenticated to access it.`); return; }
      const file = m[4];
      let b = r.files.get(file);
      if (!b) { this.fail(res, 404, 'EntryNotFound', `${file} does not exist`); return; }
      if (this.corrupt.has(file)) { b = Buffer.from(b); b[b.length >> 1] ^= 0xff; }
      const etag = isLfs(file, b.length) ? sha256(r.files.get(file)!) : gitOid(r.files.get(file)!);
      const headers: Record<string, string> = { ETag: `"${etag}"`, 'X-Linked-ETag': `"${etag}"`, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
      const range = req.headers.range?.match(/^bytes=(\d+)-(\d*)$/);
      let start = 0;
      let end = b.length - 1;
      if (range) {
        start = Number(range[1]);
        end = range[2] ? Math.min(Number(range[2]), b.length - 1) : b.length - 1;
        res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${b.length}`, 'Content-Length': String(end - start + 1) });
      } else {
        res.writeHead(200, { ...headers, 'Content-Length': String(b.length) });
      }
      const slice = b.subarray(start, end + 1);
      const cut = this.cutAfter.get(file);
      if (cut !== undefined && slice.length > cut && !(start === 0 && end === 0)) {
        this.cutAfter.delete(file);
        res.write(slice.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      res.end(slice);
      return;
    }
    if (req.method === 'POST' && path === '/api/repos/create') {
      if (!this.writable(req, res)) return;
      const p = JSON.parse((await this.body(req)).toString()) as { name: string; organization: string; type: 'model' | 'dataset' };
      const name = `${p.organization}/${p.name}`;
      if (this.repos.has(`${p.type}:${name}`)) { this.fail(res, 409, 'RepoExists', 'You already created this repo'); return; }
      const repo: Repo = { type: p.type, gated: false, refs: new Map(), commits: new Map() };
      this.repos.set(`${p.type}:${name}`, repo);
      this.commit(repo, new Map([['.gitattributes', Buffer.from('*.safetensors filter=lfs diff=lfs merge=lfs -text\n')]]), 'main', 'initial commit');
      this.json(res, 200, { url: `${this.url}/${p.type === 'dataset' ? 'datasets/' : ''}${name}`, id: name });
      return;
    }
    if (req.method === 'POST' && (m = path.match(/^\/api\/(model|dataset)s\/([^/]+\/[^/]+)\/preupload\/(.+)$/))) {
      if (!this.writable(req, res)) return;
      const r = this.lookup(res, m[1], m[2], m[3], req);
      if (!r) return;
      const p = JSON.parse((await this.body(req)).toString()) as { files: { path: string; size: number }[] };
      this.json(res, 200, { files: p.files.map((f) => ({ path: f.path, uploadMode: isLfs(f.path, f.size) ? 'lfs' : 'regular', shouldIgnore: false })) });
      return;
    }
    if (req.method === 'POST' && (m = path.match(/^\/(datasets\/)?([^/]+\/[^/]+)\.git\/info\/lfs\/objects\/batch$/))) {
      if (!this.writable(req, res)) return;
      const p = JSON.parse((await this.body(req)).toString()) as { objects: { oid: string; size: number }[] };
      res.writeHead(200, { 'Content-Type': 'application/vnd.git-lfs+json' });
      res.end(JSON.stringify({
        transfer: 'basic',
        objects: p.objects.map((o) => ({ oid: o.oid, size: o.size, ...(this.lfs.has(o.oid) ? {} : { actions: { upload: { href: `${this.url}/lfs-upload/${o.oid}` } } }) })),
      }));
      return;
    }
    if (req.method === 'PUT' && (m = path.match(/^\/lfs-upload\/([0-9a-f]{64})$/))) {
      const b = await this.body(req);
      if (sha256(b) !== m[1]) { this.fail(res, 400, 'BadOid', 'content does not match oid'); return; }
      this.lfs.set(m[1], b);
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'POST' && (m = path.match(/^\/api\/(model|dataset)s\/([^/]+\/[^/]+)\/commit\/(.+)$/))) {
      if (!this.writable(req, res)) return;
      const r = this.lookup(res, m[1], m[2], m[3], req);
      if (!r) return;
      const files = new Map(r.files);
      let title = '';
      for (const line of (await this.body(req)).toString().split('\n').filter(Boolean)) {
        const op = JSON.parse(line) as { key: string; value: { path: string; content?: string; oid?: string; summary?: string } };
        if (op.key === 'header') title = op.value.summary ?? '';
        else if (op.key === 'file') files.set(op.value.path, Buffer.from(op.value.content!, 'base64'));
        else if (op.key === 'lfsFile') {
          const b = this.lfs.get(op.value.oid!);
          if (!b) { this.fail(res, 422, 'LfsMissing', `LFS object ${op.value.oid} of ${op.value.path} was never uploaded`); return; }
          files.set(op.value.path, b);
        } else if (op.key === 'deletedFile') files.delete(op.value.path);
      }
      const sha = this.commit(r.repo, files, m[3], title);
      this.json(res, 200, { commitOid: sha, commitUrl: `${this.url}/${m[2]}/commit/${sha}`, success: true });
      return;
    }
    this.fail(res, 404, 'NotFound', `no route for ${req.method} ${path}`);
  }
}
