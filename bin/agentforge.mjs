#!/usr/bin/env node
// The CLI and DAG modules are TypeScript. runtime/engine/cli/bundle.mjs runs them from an esbuild bundle cached under
// node_modules/.cache/agentforge (rebuilt whenever a file in it changes), falling back to tsx's loader.
import { launch } from '../runtime/engine/cli/bundle.mjs';
process.exitCode = await launch(process.argv.slice(2));
