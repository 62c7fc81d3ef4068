import { FormatError, SecurityError, SfcError } from '@sfc/core';
import { describe, expect, it } from 'vitest';
import { dictAttributes, isPickleObject, isTuple, unpickle, type PickleObject, type PickleValue, type UnpickleOptions } from './pickle.js';

// pickle.dumps(obj, protocol=2 / 5) from CPython 3.11 for
// obj = {'i': [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31-1, 2**31, 2**63, -2**63-1, 2**53+1],
//        'f': [0.5, -1e300, inf], 's': ['', 'héllo ✓', 'x'*300], 'b': [b'', b'\x00\xff', bytearray(b'ab')],
//        't': ((), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)), 'set': {3}, 'fs': frozenset([4]), 'none': None,
//        'bools': [True, False], 'nested': {'k': {(1, 2): 'tuple key', 7: 'int key'}}, 'shared': [s, s]}
const X300 = '78'.repeat(300);
const PY_P2 = hex(`80027d71002858010000006971015d7102284b004b014affffffff4bff4d00014dffff4a000001004a000000804affffff7f8a0500000080008a090000000000000080008a09ffffffffffffff7fff8a07010000000000206558010000006671035d710428473fe000000000000047fe37e43c8800759c477ff00000000000006558010000007371055d71062858000000007107580a00000068c3a96c6c6f20e29c937108582c010000${X300}710965580100000062710a5d710b28635f5f6275696c74696e5f5f0a62797465730a710c2952710d635f636f646563730a656e636f64650a710e580300000000c3bf710f58060000006c6174696e317110867111527112635f5f6275696c74696e5f5f0a6279746561727261790a7113680e580200000061627114681086711552711685711752711865580100000074711928294b0185711a4b014b0286711b4b014b024b0387711c284b014b024b034b0474711d74711e5803000000736574711f635f5f6275696c74696e5f5f0a7365740a71205d71214b0361857122527123580200000066737124635f5f6275696c74696e5f5f0a66726f7a656e7365740a71255d71264b046185712752712858040000006e6f6e6571294e5805000000626f6f6c73712a5d712b2888896558060000006e6573746564712c7d712d58010000006b712e7d712f28681b58090000007475706c65206b657971304b075807000000696e74206b657971317573580600000073686172656471325d7133285d7134284b014b0265683465752e`);
const PY_P5 = hex(`80059572020000000000007d94288c0169945d94284b004b014affffffff4bff4d00014dffff4a000001004a000000804affffff7f8a0500000080008a090000000000000080008a09ffffffffffffff7fff8a0701000000000020658c0166945d9428473fe000000000000047fe37e43c8800759c477ff0000000000000658c0173945d94288c00948c0a68c3a96c6c6f20e29c9394582c010000${X300}94658c0162945d9428430094430200ff94960200000000000000616294658c01749428294b0185944b014b0286944b014b024b038794284b014b024b034b04749474948c03736574948f94284b03908c02667394284b0491948c046e6f6e65944e8c05626f6f6c73945d94288889658c066e6573746564947d948c016b947d942868118c097475706c65206b6579944b078c07696e74206b65799475738c06736861726564945d94285d94284b014b0265682465752e`);

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));
}

/** Concatenates opcode bytes, raw strings (latin-1) and byte arrays into a pickle. */
function p(...parts: (number | string | Uint8Array | number[])[]): Uint8Array {
  const out: number[] = [];
  for (const x of parts) {
    if (typeof x === 'number') out.push(x);
    else if (typeof x === 'string') for (const c of x) out.push(c.charCodeAt(0));
    else out.push(...x);
  }
  return Uint8Array.from(out);
}
const u32 = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const str = (s: string) => { const b = new TextEncoder().encode(s); return p('X', u32(b.length), b); };
const PROTO2 = [0x80, 2];

function errOf(bytes: Uint8Array, o: UnpickleOptions = {}): SfcError {
  try { unpickle(bytes, o); } catch (e) { if (e instanceof SfcError) return e; throw e; }
  throw new Error('expected an error');
}

describe('unpickle: values from CPython pickles', () => {
  for (const [name, bytes] of [['protocol 2', PY_P2], ['protocol 5', PY_P5]] as const) {
    it(`decodes every plain type (${name})`, () => {
      const root = unpickle(bytes) as Map<string, PickleValue>;
      expect(root).toBeInstanceOf(Map);
      expect(root.get('i')).toEqual([0, 1, -1, 255, 256, 65535, 65536, -(2 ** 31), 2 ** 31 - 1, 2 ** 31, 2n ** 63n, -(2n ** 63n) - 1n, 2n ** 53n + 1n]);
      expect(root.get('f')).toEqual([0.5, -1e300, Infinity]);
      expect(root.get('s')).toEqual(['', 'héllo ✓', 'x'.repeat(300)]);
      expect(root.get('b')).toEqual([new Uint8Array(0), new Uint8Array([0, 255]), new Uint8Array([97, 98])]);
      const t = root.get('t') as PickleValue[];
      expect(t).toEqual([[], [1], [1, 2], [1, 2, 3], [1, 2, 3, 4]]);
      expect(t.every(isTuple)).toBe(true);
      expect(isTuple(root.get('i'))).toBe(false);
      expect(root.get('set')).toEqual([3]);
      expect(root.get('fs')).toEqual([4]);
      expect(root.get('none')).toBe(null);
      expect(root.get('bools')).toEqual([true, false]);
      const inner = (root.get('nested') as Map<string, PickleValue>).get('k') as Map<PickleValue, PickleValue>;
      const keys = [...inner.keys()];
      expect(isTuple(keys[0])).toBe(true);
      expect(keys[0]).toEqual([1, 2]);
      expect(inner.get(7)).toBe('int key');
      const shared = root.get('shared') as PickleValue[][];
      expect(shared[0]).toBe(shared[1]); // memo keeps identity
    });
  }

  it('keeps cycles from the memo', () => {
    // l = []; l.append(l)
    const v = unpickle(p(PROTO2, ']', 'q', 0, 'h', 0, 'a', '.')) as PickleValue[];
    expect(v[0]).toBe(v);
  });

  it('handles POP, POP_MARK, DUP', () => {
    expect(unpickle(p(PROTO2, 'K', 1, 'K', 2, '0', '.'))).toBe(1);
    expect(unpickle(p(PROTO2, 'K', 1, '(', 'K', 2, 'K', 3, '1', '.'))).toBe(1);
    expect(unpickle(p(PROTO2, 'K', 7, '2', 0x86, '.'))).toEqual([7, 7]);
  });

  it('records allowed data classes as inert objects (NEWOBJ + BUILD, REDUCE, NEWOBJ_EX)', () => {
    const o = { dataClasses: ['activation_utils.SparseAct', 'dictionary_learning.*'] };
    const obj = unpickle(p(PROTO2, 'cactivation_utils\nSparseAct\n', ')', 0x81, '}', str('act'), 'K', 3, 's', 'b', '.'), o) as PickleObject;
    expect(isPickleObject(obj)).toBe(true);
    expect(obj.__class__).toBe('activation_utils.SparseAct');
    expect((obj.state as Map<string, PickleValue>).get('act')).toBe(3);
    const cfg = unpickle(p(PROTO2, 'cdictionary_learning.trainers.top_k\nConfig\n', 'K', 5, 0x85, 'R', '.'), o) as PickleObject;
    expect(cfg.__class__).toBe('dictionary_learning.trainers.top_k.Config');
    expect(cfg.args).toEqual([5]);
    const ex = unpickle(p(0x80, 4, 0x8c, 16, 'activation_utils', 0x8c, 9, 'SparseAct', 0x93, ')', '}', 0x8c, 1, 'k', 'K', 1, 's', 0x92, '.'), o) as PickleObject;
    expect(ex.kwargs?.get('k')).toBe(1);
  });

  it('keeps BUILD state given to an OrderedDict (state_dict _metadata)', () => {
    const d = unpickle(p(PROTO2, 'ccollections\nOrderedDict\n', ')', 'R', '}', str('_metadata'), 'K', 1, 's', 'b', '.')) as Map<PickleValue, PickleValue>;
    expect(d).toBeInstanceOf(Map);
    expect((dictAttributes(d) as Map<PickleValue, PickleValue>).get('_metadata')).toBe(1);
  });

  it('resolves persistent ids through the caller', () => {
    const v = unpickle(p(PROTO2, str('key'), 'Q', '.'), { persistentLoad: (pid) => `loaded:${String(pid)}` });
    expect(v).toBe('loaded:key');
    expect(errOf(p(PROTO2, str('key'), 'Q', '.'))).toBeInstanceOf(FormatError);
  });
});

describe('unpickle: security', () => {
  const refused: [string, Uint8Array][] = [
    ['os.system', p(PROTO2, 'cos\nsystem\n', str('true'), 0x85, 'R', '.')],
    ['posix.system', p(PROTO2, 'cposix\nsystem\n', '.')],
    ['builtins.eval', p(PROTO2, 'c__builtin__\neval\n', '.')],
    ['builtins.getattr', p(0x80, 4, 0x8c, 8, 'builtins', 0x8c, 7, 'getattr', 0x93, '.')],
    ['subprocess.Popen', p(PROTO2, 'ccommands\nPopen\n', '.')],
    ['torch.load', p(PROTO2, 'ctorch\nload\n', '.')],
    ['evil.Thing', p(PROTO2, 'cevil\nThing\n', ')', 0x81, '.')],
    ['activation_utils.Other', p(PROTO2, 'cactivation_utils\nOther\n', '.')],
  ];
  for (const [name, bytes] of refused) {
    it(`refuses ${name} when it is referenced, naming it`, () => {
      const e = errOf(bytes, { dataClasses: ['activation_utils.SparseAct'] });
      expect(e).toBeInstanceOf(SecurityError);
      expect(e.message).toContain(`'${name}'`);
      expect(e.hint).toMatch(/dataClasses/);
    });
  }

  it('refuses code-running opcodes INST, OBJ and EXT*', () => {
    expect(errOf(p('(', 'ios\nsystem\n', '.'))).toBeInstanceOf(SecurityError);
    expect(errOf(p(PROTO2, '(', 'o', '.'))).toBeInstanceOf(SecurityError);
    expect(errOf(p(PROTO2, 0x82, 1, '.'))).toBeInstanceOf(SecurityError);
  });

  it('treats a data-class pattern as data only, never as callable code', () => {
    // Even 'builtins.*' only produces inert records: nothing can be invoked.
    const v = unpickle(p(PROTO2, 'cbuiltins\neval\n', str('1+1'), 0x85, 'R', '.'), { dataClasses: ['builtins.*'] }) as PickleObject;
    expect(v.__class__).toBe('builtins.eval');
    expect(v.args).toEqual(['1+1']);
  });
});

describe('unpickle: malformed input and limits', () => {
  it('turns every truncation of a real pickle into a FormatError', () => {
    for (let n = 0; n < PY_P2.length; n++) expect(errOf(PY_P2.subarray(0, n))).toBeInstanceOf(FormatError);
    for (let n = 0; n < PY_P5.length; n++) expect(errOf(PY_P5.subarray(0, n))).toBeInstanceOf(FormatError);
  });

  const malformed: [string, Uint8Array, RegExp][] = [
    ['stack underflow', p(PROTO2, 'a', '.'), /underflow/],
    ['stack underflow across a MARK', p(PROTO2, ']', '(', 'K', 1, 'a', '.'), /APPEND on a int|underflow|number/],
    ['unknown opcode', p(PROTO2, 0xff), /invalid pickle opcode/],
    ['missing memo', p(PROTO2, 'h', 3, '.'), /memo key 3/],
    ['unhashable key', p(PROTO2, '}', ']', 'K', 1, 's', '.'), /unhashable/],
    ['REDUCE on a value', p(PROTO2, 'K', 1, ')', 'R', '.'), /not callable/],
    ['REDUCE with list args', p(PROTO2, 'ccollections\nOrderedDict\n', ']', 'R', '.'), /not a tuple/],
    ['APPEND on a tuple', p(PROTO2, ')', 'K', 1, 'a', '.'), /APPEND on a tuple/],
    ['SETITEM on a list', p(PROTO2, ']', 'K', 1, 'K', 2, 's', '.'), /SETITEM on a list/],
    ['protocol 6', p(0x80, 6, 'N', '.'), /protocol 6/],
    ['protocol 0 text opcode', p('I1\n.'), /INT/],
    ['invalid UTF-8', p(PROTO2, 'X', u32(2), 0xc3, 0x28, '.'), /UTF-8/],
    ['unterminated GLOBAL', p(PROTO2, 'cos'), /newline/],
    ['STOP inside MARK', p(PROTO2, '(', 'N', '.'), /MARK/],
    ['huge BINUNICODE length', p(PROTO2, 'X', u32(0xffffffff)), /exceeds|end of data/],
    ['huge BINBYTES8 length', p(0x80, 4, 0x8e, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), /exceeds/],
    ['FRAME past the end', p(0x80, 4, 0x95, [100, 0, 0, 0, 0, 0, 0, 0], 'N', '.'), /frame/],
    ['odd DICT', p(PROTO2, '(', 'K', 1, 'd', '.'), /odd/],
    ['bad _codecs.encode', p(PROTO2, 'c_codecs\nencode\n', 'K', 1, 0x85, 'R', '.'), /expects/],
    ['no STOP', p(PROTO2, 'N'), /end of data/],
  ];
  for (const [name, bytes, re] of malformed) {
    it(`FormatError: ${name}`, () => {
      const e = errOf(bytes);
      expect(e).toBeInstanceOf(FormatError);
      expect(e.message).toMatch(re);
    });
  }

  it('enforces every configurable cap', () => {
    expect(errOf(PY_P2, { limits: { maxOps: 50 } }).message).toMatch(/opcode count/);
    expect(errOf(PY_P2, { limits: { maxBytes: 100 } }).message).toMatch(/length 300 exceeds/);
    expect(errOf(PY_P2, { limits: { maxMemo: 10 } }).message).toMatch(/memo size/);
    expect(errOf(PY_P2, { limits: { maxLongBytes: 8 } }).message).toMatch(/integer width/);
    expect(errOf(p(PROTO2, ...Array(20).fill('N'), '.'), { limits: { maxStack: 10 } }).message).toMatch(/stack size/);
    expect(errOf(p(PROTO2, ...Array(20).fill('('), '.'), { limits: { maxMarks: 10 } }).message).toMatch(/MARK nesting/);
  });

  it('stops a DUP flood at the default stack cap instead of running out of memory', () => {
    const flood = new Uint8Array(1_100_005).fill(0x32); // DUP × 1.1M
    flood.set([0x80, 2, 0x4e], 0);
    expect(errOf(flood).message).toMatch(/stack size/);
  });
});
