import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../../storage/store.ts';

/*
 * A node that committed a usable but incomplete output (e.g. a few rows failed on a flaky endpoint) asks to run
 * again: ctx.retryNextRun(reason). Its artifact stays committed and queryable; its checkpoint (durable batches) is
 * kept with this marker in it, so the next `run` executes it again — resuming the batches, redoing the rest — and
 * everything downstream after it; `gc` keeps a marked checkpoint. A commit that does not ask again removes it.
 */
export const RETRY_MARK = 'retry-next-run.txt';

/** The reason a committed key runs again, or null. */
export function retryPending(store: Pick<Store, 'checkpointDir'>, key: string): string | null {
  const f = join(store.checkpointDir(key), RETRY_MARK);
  return existsSync(f) ? readFileSync(f, 'utf8') : null;
}

export function markRetry(checkpointDir: string, reason: string): void {
  writeFileSync(join(checkpointDir, RETRY_MARK), reason);
}
