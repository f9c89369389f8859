import { z } from 'zod';

/** One tool call of an assistant turn. `arguments` is parsed JSON (shape varies per tool); `raw` is what the model emitted. */
export const ToolCall = z.object({
  id: z.string(),
  name: z.string(),
  arguments: z.record(z.string(), z.unknown()).nullable(),
  raw: z.string(),
});
export type ToolCall = z.infer<typeof ToolCall>;

export const Role = z.enum(['system', 'user', 'assistant', 'tool']);
export type Role = z.infer<typeof Role>;

export const Message = z.object({
  role: Role,
  content: z.string(),
  tool_calls: z.array(ToolCall).default([]),
  /** For role=tool: the id of the call this result answers. */
  tool_call_id: z.string().nullable().default(null),
  /** For role=tool: the tool's name. */
  name: z.string().nullable().default(null),
});
export type Message = z.infer<typeof Message>;
export type MessageInput = z.input<typeof Message>;
