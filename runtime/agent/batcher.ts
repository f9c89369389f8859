/*
 * Many concurrent rollouts each ask for one generation at a time; an engine is fastest when it decodes them
 * together. The batcher queues requests and hands the engine everything that queued while the previous batch
 * ran (at most `maxBatch` at once, one batch in flight), so batch size follows the concurrency by itself.
 */
import type { GenerateRequest, GenerateResult, InferenceEngine } from './engines/engine.ts';

interface Pending { req: GenerateRequest; resolve(r: GenerateResult): void; reject(e: unknown): void }

export class BatchingGenerator {
  private queue: Pending[] = [];
  private running = false;
  /** Sizes of the batches sent so far (for metrics and tests). */
  readonly batchSizes: number[] = [];

  constructor(readonly engine: InferenceEngine, private readonly maxBatch = 32, private readonly signal?: AbortSignal) {}

  get policyVersion(): number { return this.engine.policyVersion; }

  generate(req: GenerateRequest): Promise<GenerateResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      if (!this.running) setImmediate(() => void this.pump());
    });
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.maxBatch);
        this.batchSizes.push(batch.length);
        try {
          const out = await this.engine.generate(batch.map((p) => p.req), { signal: this.signal });
          batch.forEach((p, i) => p.resolve(out[i]));
        } catch (e) {
          batch.forEach((p) => p.reject(e));
        }
        // let rollouts whose turn just finished queue their next request before the next batch goes out
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.running = false;
    }
  }
}
