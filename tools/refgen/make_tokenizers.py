"""Hand-made tokenizer.json files of today's model families, with reference encodings.

Dev tool only. Needs the Rust `tokenizers` Python package (pip install tokenizers; not Debian's
torch python): the reference ids come from Hugging Face's own implementation, independent of the
JavaScript port sfc runs. Each family's pipeline is assembled the way the real files are
(normalizer, pre-tokenizer, BPE options, post-processor, decoder), on a tiny vocabulary trained
here on a few sentences, so the files are small and nothing is downloaded.

    /tmp/venv/bin/python tools/refgen/make_tokenizers.py   # writes fixtures/tokenizers/<family>/{tokenizer.json,expected.json}

Families:
  gemma    SentencePiece-style BPE, byte_fallback, Replace(" " -> "▁") normalizer, no pre-tokenizer,
           TemplateProcessing "<bos> $A" (Gemma 2/3)
  llama2   as gemma with Prepend("▁") + Replace normalizer, "<s> $A" (Llama 2, Mistral v0.1)
  llama3   ByteLevel BPE, regex Split pre-tokenizer, ignore_merges, ByteLevel + TemplateProcessing
           "<|begin_of_text|> $A" (Llama 3.x)
  qwen2    ByteLevel BPE, NFC normalizer, regex Split pre-tokenizer, no BOS (Qwen 2/2.5/3)
"""
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', '..', 'fixtures', 'tokenizers')

CORPUS = [
    "The knight that the women help was brave.",
    "The knights that the woman helps were brave.",
    "The author that the guards like is here. The authors that the guard likes are here.",
    "Hello world! 12345 and 678, naïve café; émigré.",
    "The parents that the guards know were happy\nwhile the child was not.",
] * 3

LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

TEXTS = [
    "The knight that the women help",
    " was", " were", "was", " is", " are",
    "The knight that the women help was",
    "Hello  world",            # two spaces
    "naïve ☃ snowman",          # ☃ is in no vocabulary: byte fallback / byte-level
    "12345678",
    "line one\nline two",
    " leading space",
    "<bos>The",                 # special tokens written in the text
    "<|begin_of_text|>The",
    "",
]


def sentencepiece_bpe(normalizer, bos, eos, specials):
    tok = Tokenizer(models.BPE(unk_token='<unk>', byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizer
    byte_tokens = [f'<0x{b:02X}>' for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=specials + byte_tokens, show_progress=False)
    # Trained with merges kept inside words (as SentencePiece's pieces are); the file has no pre-tokenizer, as Gemma's.
    tok.pre_tokenizer = pre_tokenizers.Split('▁', behavior='merged_with_next')
    tok.train_from_iterator(CORPUS, trainer)
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace('▁', ' '), decoders.ByteFallback(), decoders.Fuse()]
                                    + ([decoders.Strip(' ', 1, 0)] if normalizer_prepends(normalizer) else []))
    tok.post_processor = processors.TemplateProcessing(single=f'{bos} $A', pair=f'{bos} $A {bos} $B',
                                                       special_tokens=[(bos, tok.token_to_id(bos))])
    js = json.loads(tok.to_str())
    # Byte tokens belong to the vocabulary (as in Gemma's and Llama 2's files), not to added_tokens.
    js['added_tokens'] = [t for t in js['added_tokens'] if t['content'] not in byte_tokens]
    return js


def normalizer_prepends(n):
    return 'Prepend' in repr(n)


def byte_level_bpe(normalizer, pattern, bos, specials, ignore_merges):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior='isolated', invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.decoder = decoders.ByteLevel()
    level = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    if bos:
        tok.post_processor = processors.Sequence([level, processors.TemplateProcessing(
            single=f'{bos} $A', pair=f'{bos} $A {bos} $B', special_tokens=[(bos, tok.token_to_id(bos))])])
    else:
        tok.post_processor = level
    return json.loads(tok.to_str())


def families():
    yield 'gemma', sentencepiece_bpe(normalizers.Replace(' ', '▁'), '<bos>', '<eos>', ['<pad>', '<eos>', '<bos>', '<unk>'])
    yield 'llama2', sentencepiece_bpe(normalizers.Sequence([normalizers.Prepend('▁'), normalizers.Replace(' ', '▁')]), '<s>', '</s>',
                                      ['<unk>', '<s>', '</s>'])
    yield 'llama3', byte_level_bpe(None, LLAMA3_SPLIT, '<|begin_of_text|>', ['<|begin_of_text|>', '<|end_of_text|>'], True)
    yield 'qwen2', byte_level_bpe(normalizers.NFC(), QWEN_SPLIT, None, ['<|endoftext|>', '<|im_start|>', '<|im_end|>'], False)


def main():
    for name, js in families():
        tok = Tokenizer.from_str(json.dumps(js))
        cases = []
        for text in TEXTS:
            plain = tok.encode(text, add_special_tokens=False)
            full = tok.encode(text, add_special_tokens=True)
            cases.append({'text': text, 'ids': plain.ids, 'tokens': plain.tokens, 'ids_with_special': full.ids,
                          'decoded': tok.decode(plain.ids, skip_special_tokens=False)})
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'tokenizer.json'), 'w', encoding='utf-8') as f:
            json.dump(js, f, ensure_ascii=False)
        with open(os.path.join(d, 'expected.json'), 'w', encoding='utf-8') as f:
            json.dump({'generator': 'tools/refgen/make_tokenizers.py', 'tokenizers': __import__('tokenizers').__version__,
                       'vocab_size': tok.get_vocab_size(with_added_tokens=True), 'cases': cases}, f, ensure_ascii=False, indent=1)
        print(name, tok.get_vocab_size(with_added_tokens=True), os.path.getsize(os.path.join(d, 'tokenizer.json')))


if __name__ == '__main__':
    main()
