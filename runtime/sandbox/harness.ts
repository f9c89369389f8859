/*
 * The trusted test harness for code tasks. A pass used to be "the program exited 0", which a candidate can forge
 * (os._exit(0), sys.exit(0) in a finally, an atexit hook, a patched module the tests rely on). Now:
 *
 *  - The harness (HARNESS, the sandbox's program) makes itself non-dumpable (no ptrace, no /proc/<pid>/mem or fd
 *    access for its own uid), loads the tests, forks the candidate process, and only then reads a per-run random
 *    nonce from stdin; the candidate process waits on a pipe until the nonce has been consumed. So the nonce is never
 *    in the candidate's memory, never in a pipe it can read, and the harness's stdout is not among its fds.
 *  - The candidate's code runs only in the candidate process, and only its return values cross back, decoded by the
 *    harness as plain data (lists, dicts, numbers, … — never objects with methods) or, for QuixBugs' graphs, as
 *    instances of the tests' own Node class carrying plain attributes. The tests run in the harness against its own
 *    unpatched modules, so the candidate can neither skip an assert, patch what the asserts use, nor return an
 *    object whose __eq__ always says yes.
 *  - Only after the last check passed does the harness print `AGENTFORGE-PASS <nonce>` on its stdout; a pass is
 *    that exact line plus exit 0 (evaluate.ts).
 */

import { randomBytes } from 'node:crypto';
import { runSandboxed, type Limits, type Outcome, type SandboxResult, type SandboxSpec } from './sandbox.ts';

export { PROOF_PREFIX, CASES_PREFIX, TASK_FILE, HARNESS_FILE, HARNESS } from './harness-py.ts';
import { CASES_PREFIX, HARNESS, HARNESS_FILE, PROOF_PREFIX, TASK_FILE } from './harness-py.ts';

/** What the harness is told about one run (written as TASK_FILE, read by the harness before the candidate runs). */
export type HarnessSpec =
  | {
    /** HumanEval, MBPP: test code executed in the harness, calling stubs of the candidate's functions. */
    mode: 'script';
    /** Candidate code, executed in the candidate process. */
    program: string;
    /** Trusted code executed in the harness before the tests (HumanEval: the prompt's helpers; MBPP: test imports). */
    setup: string;
    test: string;
    /**
     * Names the tests call that the candidate defines: each becomes a stub that calls into the candidate process.
     * With `freeNames`, every name the tests read but neither they, the setup nor Python's builtins define is added.
     */
    names: string[];
    freeNames: boolean;
    /** HumanEval: `check` is called with the stub for this name. */
    checkWith: string | null;
    /**
     * Code worlds: independent test cases run one by one after `test` (which then only sets up); the harness proves
     * which of them passed with a CASES_PREFIX line carrying the nonce, so a partial score is as unforgeable as a pass.
     */
    cases?: string[];
  }
  | {
    /** QuixBugs: the test module (pytest style) imports `programModule`, which is stubbed. */
    mode: 'module';
    program: string;
    testModule: string;
    programModule: string;
    name: string;
  };

/** What a proven run says: the pass (proof line + exit 0), and in cases mode which cases the proof names. */
export interface ProvenResult {
  passed: boolean;
  /** The sandbox's outcome, or 'unproven': the run exited 0 without the harness's proof that every check passed. */
  outcome: Outcome | 'unproven';
  reason: string;
  wallMs: number;
  /** Cases mode: indices of the passed cases, from the nonce-bearing line (null when the harness printed none). */
  casesPassed: number[] | null;
}

export type SandboxRunner = (spec: SandboxSpec) => Promise<SandboxResult>;

export interface ProvenRunOptions {
  limits?: Partial<Limits>;
  signal?: AbortSignal;
  allowHostNetworkAndPids?: boolean;
  isolation?: SandboxSpec['isolation'];
  /** Runs the sandbox (default runSandboxed; a warm pool from pool.ts is the other). */
  runner?: SandboxRunner;
}

const PY = '/usr/bin/python3';

/**
 * Runs the trusted harness on `spec` in the sandbox with a fresh nonce. A pass needs the harness's proof line
 * carrying that nonce (which the candidate never sees) and exit code 0; anything else is a failure with its reason.
 */
export async function runProven(spec: HarnessSpec, files: Record<string, string>, opts: ProvenRunOptions = {}): Promise<ProvenResult> {
  const nonce = randomBytes(24).toString('hex');
  const run = opts.runner ?? runSandboxed;
  const r = await run({
    argv: [PY, '-I', HARNESS_FILE], files: { ...files, [HARNESS_FILE]: HARNESS, [TASK_FILE]: JSON.stringify(spec) },
    stdin: `${nonce}\n`, limits: opts.limits, signal: opts.signal,
    allowHostNetworkAndPids: opts.allowHostNetworkAndPids, isolation: opts.isolation,
  });
  const lines = r.stdout.split('\n');
  const proven = lines.includes(PROOF_PREFIX + nonce);
  const casesLine = lines.find((l) => l.startsWith(`${CASES_PREFIX}${nonce} `) || l === `${CASES_PREFIX}${nonce}`);
  const casesPassed = casesLine === undefined ? null
    : casesLine.slice(CASES_PREFIX.length + nonce.length).trim().split(',').filter(Boolean).map(Number);
  const base = { wallMs: r.wallMs, casesPassed };
  if (r.outcome === 'ok' && proven) return { ...base, passed: true, outcome: 'ok', reason: lastLineOf(r.stderr) || 'all checks passed' };
  if (r.outcome === 'ok') return { ...base, passed: false, outcome: 'unproven', reason: 'exit code 0 without the harness\'s proof that the checks ran to the end (the program ended the run itself)' };
  // A harness that finished says why on its last stderr line (also when it reports the candidate process killed by
  // a limit); otherwise the sandbox's reason (timeout, output cap …).
  const harnessSaid = r.exitCode === 1 || (r.exitCode !== null && r.exitCode > 128 && r.outcome !== 'timeout' && r.outcome !== 'output_limit');
  const reason = harnessSaid ? lastLineOf(r.stderr) || r.reason : r.reason;
  return { ...base, passed: false, outcome: r.outcome, reason };
}

function lastLineOf(text: string): string {
  return text.split('\n').map((s) => s.trim()).filter(Boolean).at(-1)?.slice(0, 500) ?? '';
}
