// The embedded model's tokenizer files: Hugging Face tokenizers WordLevel with the Whitespace
// pre-tokenizer (regex \w+|[^\w\s]+, so "happy." is two tokens and " is" is the token "is"),
// ids 0 <|endoftext|>, 1 <|padding|>, 2 <|unk|>, then the grammar's words in order.

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|padding|>', '<|unk|>'] as const;
export const EOS_ID = 0;
export const PAD_ID = 1;

export function tokenizerJson(words: readonly string[]): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  [...SPECIAL_TOKENS, ...words].forEach((w, i) => {
    if (w in vocab) throw new Error(`tokenizer: '${w}' twice`);
    vocab[w] = i;
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '<|unk|>' },
  };
}

export function tokenizerConfigJson(maxLength: number): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<|endoftext|>',
    eos_token: '<|endoftext|>',
    unk_token: '<|unk|>',
    pad_token: '<|padding|>',
    add_bos_token: false,
    add_eos_token: false,
    model_max_length: maxLength,
  };
}
