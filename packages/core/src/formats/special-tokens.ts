// The special tokens of a tokenizer.json that feature-circuits' data loading depends on: the BOS
// its post-processor puts in front of every text (Gemma's <bos>, Llama 3's <|begin_of_text|>),
// which the reference strips from answers (docs/formats.md, special tokens).

/**
 * tokenizer_config.json's `bos_token` (a string or an AddedToken object) as an id; else the one
 * token the post-processor gives an empty text (`emptyWithSpecials()`), if it gives exactly one.
 * An explicit `bos_token: null` (Qwen) means none.
 */
export function bosTokenId(config: Record<string, unknown>, toId: (token: string) => number | undefined,
  emptyWithSpecials: () => readonly number[]): number | undefined {
  const raw = config.bos_token;
  const name = typeof raw === 'string' ? raw
    : typeof raw === 'object' && raw !== null && typeof (raw as { content?: unknown }).content === 'string' ? (raw as { content: string }).content
      : undefined;
  if (name !== undefined) return toId(name) ?? undefined;
  if (raw === null) return undefined;
  const ids = emptyWithSpecials();
  return ids.length === 1 ? ids[0] : undefined;
}
