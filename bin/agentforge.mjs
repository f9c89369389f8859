#!/usr/bin/env node
// The CLI and DAG modules are TypeScript: register tsx's loader, then hand over to the real entry point.
import { register } from 'tsx/esm/api';
register();
await import('../runtime/cli/main.ts');
