/*
 * Reliability suite (issue 19): every attack a hostile or careless user tried, as bench JSON lines. Each area lives
 * in bench/reliability/<area>.ts and returns { metric, held, total }; the goal of each is 100 % held.
 *   npm run bench:reliability [area …]     (areas: kill definitions corruption sql sandbox; default all)
 * AGENTFORGE_KILL_TRIALS raises the number of SIGKILL trials (default 20).
 */
interface Metric { metric: string; held: number; total: number; detail?: string }
type Area = { run(): Promise<Metric[]> };

const AREAS: Record<string, () => Promise<Area>> = {
  kill: () => import('./reliability/kill.ts'),
  definitions: () => import('./reliability/definitions.ts'),
  corruption: () => import('./reliability/corruption.ts'),
  sql: () => import('./reliability/sql.ts'),
  sandbox: () => import('./reliability/sandbox.ts'),
};

async function main(): Promise<void> {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((a) => !(a in AREAS));
  if (unknown.length) {
    console.error(`unknown area(s) ${unknown.join(', ')}; choose from ${Object.keys(AREAS).join(', ')}`);
    process.exit(2);
  }
  let failed = 0;
  for (const name of asked.length ? asked : Object.keys(AREAS)) {
    const t0 = performance.now();
    let metrics: Metric[];
    try {
      metrics = await (await AREAS[name]()).run();
    } catch (e) {
      metrics = [{ metric: `${name}_suite_ran`, held: 0, total: 1, detail: String((e as Error)?.stack ?? e) }];
    }
    for (const m of metrics) {
      const ratio = m.total ? m.held / m.total : 0;
      const pass = m.total > 0 && m.held === m.total;
      if (!pass) failed++;
      console.log(JSON.stringify({
        bench: 'reliability', metric: m.metric, value: m.held, unit: `of ${m.total}`, baseline: m.total, ratio,
        goal: 1, pass, ...(m.detail ? { detail: m.detail } : {}), seconds: +((performance.now() - t0) / 1000).toFixed(1),
      }));
    }
  }
  process.exit(failed ? 1 : 0);
}

void main();
