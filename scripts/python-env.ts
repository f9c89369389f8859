// Prints the runtime node's Python interpreter, creating its pinned venv first if needed (used by test scripts and CI).
import { ensurePythonEnv } from '../runtime/node/env.ts';

const env = await ensurePythonEnv({ onLog: (l) => process.stderr.write(`[python env] ${l}\n`) });
process.stdout.write(`${env.python}\n`);
