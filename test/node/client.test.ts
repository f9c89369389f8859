/* The TS client against the real Python node: events, errors with stderr tails, kills and aborts. */
import { describe, expect, it } from 'vitest';
import { NodeError, runNode, type NodeEvent } from '../../runtime/node/client.ts';
import { python } from './helpers.ts';

describe('runNode', () => {
  it('rejects a request the zod schema refuses, before spawning anything', async () => {
    await expect(runNode('export-onnx', { model_dir: 3 }, { python: '/nonexistent/python' }))
      .rejects.toThrow(/invalid export-onnx request[\s\S]*model_dir[\s\S]*out_dir/);
  });

  it('turns a Python request error into a NodeError naming the unknown and missing fields', async () => {
    const err = await runNode('forward', { bogus: 1 }, { python: await python() }).catch((e) => e);
    expect(err).toBeInstanceOf(NodeError);
    // missing fields: the zod schema catches them before spawning; an unknown one (zod strips it) the node refuses
    const py = await runNode('forward', { model_dir: '/m', input_ids: [[1]], bogus: 1 }, { python: await python() }).catch((e) => e);
    expect(py.message).toMatch(/invalid forward request: .*\nbogus\n\s+Extra inputs are not permitted/s);
    expect(py.exitCode).toBe(2);
  }, 60_000);

  it('reports a failing command with its message and traceback', async () => {
    const events: NodeEvent[] = [];
    const err = await runNode('export-onnx', { model_dir: '/nonexistent/model', out_dir: '/tmp/af-never' },
      { python: await python(), onEvent: (e) => events.push(e) }).catch((e) => e);
    expect(err).toBeInstanceOf(NodeError);
    expect(err.message).toMatch(/\/nonexistent\/model\/config.json is missing/);
    expect(err.traceback).toMatch(/Traceback/);
    expect(events.some((e) => e.event === 'error')).toBe(true);
  }, 60_000);

  it('a killed node fails with the signal and the stderr tail; an abort kills the child', async () => {
    // A command that imports torch before it can fail, so the kill lands while it runs (an unknown command exits
    // in a few ms and raced the kill).
    const slow = { model_dir: '/nonexistent/model', out_dir: '/tmp/af-never' };
    const err = await runNode('export-onnx', slow, {
      python: await python(),
      onSpawn: (pid) => setTimeout(() => process.kill(pid, 'SIGKILL'), 50),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(NodeError);
    expect(err.signal).toBe('SIGKILL');
    expect(err.message).toMatch(/killed by SIGKILL \(out of memory\?/);

    const ac = new AbortController();
    let pid = 0;
    const p = runNode('export-onnx', slow, { python: await python(), signal: ac.signal, onSpawn: (x) => { pid = x; ac.abort(new Error('stop')); } });
    await expect(p).rejects.toThrow('stop');
    expect(() => process.kill(pid, 0)).toThrow(); // the child is gone
  }, 60_000);

  it('a python that prints junk on stdout is a protocol error, not silent garbage', async () => {
    // `python -c` ignores our module: its stdout is not protocol events.
    const err = await runNode('describe', {}, { python: '/bin/echo' }).catch((e) => e);
    expect(err.message).toMatch(/broke the protocol: stdout line is not JSON/);
  });
});
