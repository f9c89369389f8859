/*
 * push-to-hub: a model artifact to a Hugging Face Hub repo through @huggingface/hub, with a generated model card
 * (the recipe's eval tables wired in, the lineage of the artifact from the store's manifests, the base model from
 * resolve-model's source.json), and optionally the trajectories as a Parquet dataset repo (the table's own Parquet
 * files). Needs HF_TOKEN (not part of the key); HF_ENDPOINT picks the hub. Creates missing repos (private unless
 * `private: false`).
 */
import { z } from 'zod';
import { model, operator, optional, report, table } from '../runtime/engine/operator.ts';
import { ResultRow } from '../runtime/eval/results.ts';
import { EvalRow } from '../schemas/eval.ts';
import { Trajectory } from '../schemas/trajectory.ts';
import { baseModelOf, folderFiles, lineageOf, modelCard, pushFiles, type CardTable } from '../runtime/models/push.ts';

export const PushReport = z.object({
  repo: z.string(), commit: z.string(), url: z.string(), files: z.number().int(), created: z.boolean(),
  dataset: z.object({ repo: z.string(), commit: z.string(), files: z.number().int(), rows: z.number().int() }).nullable(),
});

const repoId = z.string().regex(/^[\w.-]+\/[\w.-]+$/, 'a hub repo id: org/name');

export const pushToHub = operator({
  name: 'push-to-hub',
  version: 1,
  description: 'model dir + generated model card (eval tables, lineage) and optionally a Parquet trajectories dataset, pushed to the HF Hub',
  params: z.object({
    repo: repoId,
    dataset_repo: repoId.nullable().default(null),
    private: z.boolean().default(true),
    branch: z.string().min(1).default('main'),
    commit_message: z.string().min(1).default('Upload agentforge model'),
    description: z.string().nullable().default(null),
  }),
  inputs: { model: model(), results: optional(table(ResultRow)), heldout: optional(table(EvalRow)), trajectories: optional(table(Trajectory)) },
  output: report(PushReport, 'PushReport'),
  env: ['HF_ENDPOINT'],
  async run({ params, inputs, ctx }) {
    if (!process.env.HF_TOKEN && !process.env.HUGGING_FACE_HUB_TOKEN) throw new Error(`push-to-hub: pushing to ${params.repo} needs a write token; set HF_TOKEN`);
    if (inputs.trajectories && !params.dataset_repo) throw new Error('push-to-hub: trajectories are wired in but params.dataset_repo is not set; name the dataset repo (org/name)');
    const tables: CardTable[] = [];
    if (inputs.heldout) {
      const rows = await inputs.heldout.all();
      tables.push({
        title: 'Held-out tasks of the built-in worlds', columns: ['model', 'world', 'split', 'tasks', 'samples/task', 'success', 'pass^1'],
        rows: rows.map((r) => [r.model, r.world, r.split, r.tasks, r.samples_per_task, r.success, r.pass_hat_k['1'] ?? r.success]),
      });
    }
    if (inputs.results) {
      const rows = await inputs.results.all();
      // errored trials beside the score: a 0 from runs that never ran is not the model's 0
      tables.push({
        title: 'Benchmarks', columns: ['agent', 'benchmark', 'subset', 'metric', 'value', 'n', 'errored'],
        rows: rows.map((r) => [r.agent, r.benchmark, r.subset, r.metric, r.value, r.n, r.attempts ? `${r.errored}/${r.attempts}` : '—']),
      });
    }
    const lineage = lineageOf(ctx.storeDir, inputs.model.key);
    let dataset: z.infer<typeof PushReport>['dataset'] = null;
    if (inputs.trajectories && params.dataset_repo) {
      const parts = inputs.trajectories.files;
      const rows = await inputs.trajectories.count();
      const files: Record<string, string | { text: string }> = Object.fromEntries(parts.map((f, i) => [`data/train-${String(i).padStart(5, '0')}-of-${String(parts.length).padStart(5, '0')}.parquet`, f]));
      files['README.md'] = { text: `---\ntags:\n- agentforge\n- tool-use\nconfigs:\n- config_name: default\n  data_files: data/*.parquet\n---\n\n# ${params.dataset_repo.split('/')[1]}\n\n${rows} agent trajectories (messages, tools, task, world, source) used to train [${params.repo}](https://huggingface.co/${params.repo}).\n` };
      const r = await pushFiles(params.dataset_repo, 'dataset', files, { private: params.private, branch: params.branch, title: params.commit_message });
      dataset = { repo: r.repo, commit: r.commit, files: r.files, rows };
      ctx.log(`push-to-hub: ${rows} trajectories → dataset ${r.repo} @ ${r.commit}`);
    }
    const card = modelCard({
      repo: params.repo, base: baseModelOf(ctx.storeDir, lineage), dataset: dataset?.repo ?? null, tables, lineage, description: params.description ?? undefined,
    });
    const files: Record<string, string | { text: string }> = { ...folderFiles(inputs.model.dir), 'README.md': { text: card } };
    const r = await pushFiles(params.repo, 'model', files, { private: params.private, branch: params.branch, title: params.commit_message });
    ctx.log(`push-to-hub: ${r.files} files → ${r.repo} @ ${r.commit}${r.created ? ' (created)' : ''}`);
    return { repo: r.repo, commit: r.commit, url: r.url, files: r.files, created: r.created, dataset };
  },
});
