/*
 * The chat template every model of the pipeline is trained and served with: Qwen-style ChatML with tool calling.
 * init-model writes CHAT_TEMPLATE into tokenizer_config.json, so Python (transformers, vLLM) and TS render the
 * same text. Rendered shape:
 *
 *   <|im_start|>system\n{system content}{tools block}<|im_end|>\n
 *   <|im_start|>user\n{content}<|im_end|>\n
 *   <|im_start|>assistant\n{content}[\n]<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call><|im_end|>\n
 *   <|im_start|>tool\n<tool_response>\n{content}\n</tool_response><|im_end|>\n
 *   (add_generation_prompt) <|im_start|>assistant\n
 *
 * Deviation from Qwen: each tool result is its own `tool` turn (Qwen groups them under `user`), so every message
 * appends exactly one turn and incremental rendering is a plain prefix extension. As in Qwen, a newline separates
 * the assistant's text from its first call and consecutive calls from each other.
 * Tool calls may be our ToolCall ({name, arguments, raw}) or OpenAI-style ({function: {name, arguments}}); a
 * string `arguments` is emitted verbatim, and a null one (malformed model output) falls back to `raw`, the text
 * the model produced inside <tool_call>, so a rendered rollout shows what the model actually said.
 */

export const SPECIAL_TOKENS = [
  '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<tool_call>', '</tool_call>', '<tool_response>', '</tool_response>',
] as const;

export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';
export const EOS_TOKEN = '<|im_end|>';
export const PAD_TOKEN = '<|endoftext|>';

const TOOLS_BLOCK =
  "{{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n' }}" +
  "{{- 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}" +
  "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}" +
  "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within ' }}" +
  "{{- '<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\\n</tool_call>' }}";

const TOOL_CALLS =
  "{%- for tc in message.tool_calls %}" +
  "{%- if (loop.first and message.content) or (not loop.first) %}{{- '\\n' }}{%- endif %}" +
  "{%- if tc.function is defined and tc.function %}{%- set call = tc.function %}{%- else %}{%- set call = tc %}{%- endif %}" +
  "{%- if call.arguments is none and call.raw is defined and call.raw is string %}" +
  "{{- '<tool_call>\\n' + call.raw + '\\n</tool_call>' }}" +
  "{%- else %}" +
  "{{- '<tool_call>\\n{\"name\": \"' + call.name + '\", \"arguments\": ' }}" +
  "{%- if call.arguments is string %}{{- call.arguments }}{%- elif call.arguments is none %}{{- '{}' }}{%- else %}{{- call.arguments | tojson }}{%- endif %}" +
  "{{- '}\\n</tool_call>' }}" +
  "{%- endif %}" +
  "{%- endfor %}";

/** Jinja source (works in @huggingface/jinja and in Python jinja2 as used by transformers' apply_chat_template). */
export const CHAT_TEMPLATE =
  "{%- if messages | length > 0 and messages[0].role == 'system' %}" +
  "{{- '<|im_start|>system\\n' + messages[0].content }}" +
  "{%- if tools %}" + TOOLS_BLOCK + "{%- endif %}" +
  "{{- '<|im_end|>\\n' }}" +
  "{%- elif tools %}" +
  "{{- '<|im_start|>system\\n' }}{{- 'You are a helpful assistant.' }}" + TOOLS_BLOCK + "{{- '<|im_end|>\\n' }}" +
  "{%- endif %}" +
  "{%- for message in messages %}" +
  "{%- if message.role == 'system' %}" +
  "{%- if not loop.first %}{{- '<|im_start|>system\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}" +
  "{%- elif message.role == 'user' %}" +
  "{{- '<|im_start|>user\\n' + message.content + '<|im_end|>\\n' }}" +
  "{%- elif message.role == 'assistant' %}" +
  "{{- '<|im_start|>assistant\\n' }}{%- if message.content %}{{- message.content }}{%- endif %}" +
  "{%- if message.tool_calls %}" + TOOL_CALLS + "{%- endif %}" +
  "{{- '<|im_end|>\\n' }}" +
  "{%- elif message.role == 'tool' %}" +
  "{{- '<|im_start|>tool\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}" +
  "{%- else %}" +
  "{{- raise_exception('unknown role: ' + message.role) }}" +
  "{%- endif %}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** The text add_generation_prompt appends; generated tokens follow it directly. */
export const GENERATION_PROMPT = '<|im_start|>assistant\n';
