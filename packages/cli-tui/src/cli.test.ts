import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { memoryIO } from './io.js';
import { COMMANDS } from './commands/index.js';
import type { SfcCommand } from './commands/command.js';

async function run(args: string[], cwd = mkdtempSync(join(tmpdir(), 'sfc-cli-'))) {
  const io = memoryIO({ cwd });
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

function allCommands(list: readonly SfcCommand[], prefix: string[] = []): string[][] {
  return list.flatMap((c) => {
    const path = [...prefix, c.command.split(' ')[0]!];
    return [path, ...allCommands(c.subcommands ?? [], path)];
  });
}

describe('option parsing', () => {
  it('rejects unknown flags and commands with exit 2 and a usage hint', async () => {
    const r = await run(['info', '--modle', 'x']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('error: unknown option --modle\nhint: did you mean --model? (`sfc info --help` lists the options)\n');
    const c = await run(['infoo']);
    expect(c.code).toBe(2);
    expect(c.err).toBe("error: unknown command 'infoo'\nhint: did you mean `sfc info`? (`sfc --help` lists the commands)\n");
    expect((await run([])).code).toBe(2);
  });

  it('rejects a missing required flag and a bad choice', async () => {
    const r = await run(['forward', '--model', 'm']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('Missing required arguments: text, out');
    const m = await run(['config', 'print', '--method', 'fast']);
    expect(m.code).toBe(2);
    expect(m.err).toMatch(/Invalid values:.*method.*fast/s);
  });

  it('validates flag values with the config schema, naming the flag', async () => {
    const r = await run(['config', 'print', '--steps', 'ten']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('error: --steps: expected integer ≥ 1, got "ten"\nhint: see `sfc <command> --help` for the accepted values\n');
    expect((await run(['config', 'print', '--steps'])).code).toBe(2); // value missing
    expect((await run(['config', 'print', '--node-threshold', '-0.5'])).err).toContain('--node-threshold: expected number ≥ 0, got -0.5');
  });

  it('config print shows each value with its source', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'sfc-cli-'));
    writeFileSync(join(cwd, 'sfc.config.json'), JSON.stringify({ backend: 'tfjs-wasm', circuit: { steps: 5 } }));
    const r = await run(['config', 'print', '--steps', '20', '--thresholds', '0.1,1'], cwd);
    expect(r.code).toBe(0);
    const line = (k: string) => r.out.split('\n').find((l) => l.startsWith(`${k} `));
    expect(line('circuit.steps')).toMatch(/^circuit\.steps\s+20\s+flag --steps$/);
    expect(line('backend')).toMatch(new RegExp(`^backend\\s+"tfjs-wasm"\\s+${join(cwd, 'sfc.config.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`));
    expect(line('circuit.method')).toMatch(/^circuit\.method\s+"ig"\s+default$/);
    expect(line('evaluate.thresholds')).toMatch(/\[0\.1,1\]\s+flag --thresholds$/);
    expect(line('model')).toMatch(/^model\s+\(unset\)$/);
    const j = await run(['config', 'print', '--json', '--model', 'm'], cwd);
    const doc = JSON.parse(j.out);
    expect(doc.values['model']).toEqual({ value: join(cwd, 'm'), source: 'flag --model' });
    expect(doc.values['circuit.steps']).toEqual({ value: 5, source: join(cwd, 'sfc.config.json') });
  });

  it('config print and --verbose say which config file and which code files (backend, plugins) are used', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'sfc-cli-'));
    writeFileSync(join(cwd, 'sfc.config.json'), JSON.stringify({ backend: ['tfjs-cpu', 'sfc-backend-nope'] }));
    const r = await run(['config', 'print'], cwd);
    expect(r.out).toMatch(/^code loaded from:$/m);
    expect(r.out).toMatch(/^ {2}backend\s+tfjs-cpu\s+\/.*backend-tfjs\/.*\.(js|ts)$/m);
    expect(r.out).toMatch(/^ {2}backend\s+sfc-backend-nope\s+\(not installed\)$/m);
    expect(r.out).toMatch(/^ {2}dictionary plugin\s+@sfc\/dictionaries\s+\/.*dictionaries\/.*\.(js|ts)$/m);
    const j = JSON.parse((await run(['config', 'print', '--json'], cwd)).out);
    expect(j.code.map((c: { name: string }) => c.name)).toEqual(['tfjs-cpu', 'sfc-backend-nope', '@sfc/dictionaries']);
    const v = await run(['config', 'print', '--verbose'], cwd);
    expect(v.err).toContain(`verbose: config: ${join(cwd, 'sfc.config.json')}`);
    expect(v.err).toMatch(/^verbose: backend tfjs-cpu: \/.*backend-tfjs/m);
    const none = mkdtempSync(join(tmpdir(), 'sfc-cli-'));
    expect((await run(['config', 'print', '--verbose'], none)).err).toContain(`verbose: config: none (searched ${none})`);
  });

  it('reports an invalid config file with its key path and exit 2', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'sfc-cli-'));
    writeFileSync(join(cwd, 'sfc.config.json'), JSON.stringify({ circuit: { steps: 'ten' } }));
    const r = await run(['config', 'print'], cwd);
    expect(r.code).toBe(2);
    expect(r.err).toContain('circuit.steps: expected integer ≥ 1, got "ten"');
  });

  it('--config points at another file; a missing one is exit 3', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'sfc-cli-'));
    writeFileSync(join(cwd, 'other.json'), JSON.stringify({ circuit: { seed: 3 } }));
    expect((await run(['config', 'print', '--config', 'other.json'], cwd)).out).toMatch(/circuit\.seed\s+3\s+.*other\.json/);
    expect((await run(['config', 'print', '--config', 'missing.json'], cwd)).code).toBe(3);
  });

  it('config schema prints a JSON Schema', async () => {
    const r = await run(['config', 'schema']);
    expect(JSON.parse(r.out).properties.circuit.properties.steps).toMatchObject({ type: 'integer', minimum: 1, default: 10 });
  });
});

describe('help, version, completion', () => {
  it('prints examples whole: a long command breaks between arguments with \\, never inside a path', async () => {
    for (const path of allCommands(COMMANDS)) {
      const r = await run([...path, '--help']);
      const ex = r.out.slice(r.out.indexOf('Examples:\n') + 10, r.out.lastIndexOf('\n\nEvery flag'));
      const commands = ex.split('\n').reduce<string[]>((acc, l) => {
        if (l.startsWith('    sfc')) acc.push(l.trim());
        else if (l.startsWith('      ')) acc[acc.length - 1] = `${acc[acc.length - 1]!.replace(/ \\$/, '')} ${l.trim()}`;
        return acc;
      }, []);
      const command = COMMANDS.find((c) => c.command.split(' ')[0] === path[0])!;
      const own = path.length === 1 ? command : command.subcommands!.find((c) => c.command.split(' ')[0] === path[1])!;
      expect(commands.map((c) => c.trim()), path.join(' ')).toEqual(own.examples.map(([cmd]) => cmd.replace(/\$0/g, 'sfc')));
      for (const line of r.out.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
    }
  });

  it('`sfc completion --help` explains the command instead of printing the script', async () => {
    const r = await run(['completion', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('sfc completion >> ~/.bashrc');
    expect(r.out).not.toContain('###-begin-sfc-completions-###');
  });

  it('suggests the closest option for a misspelt flag, before other complaints', async () => {
    const r = await run(['discover', '--nodes-threshold', '0.2']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('error: unknown option --nodes-threshold\nhint: did you mean --node-threshold? (`sfc discover --help` lists the options)\n');
    expect((await run(['config', 'print', '--stps', '3'])).err).toContain('did you mean --steps? (`sfc config print --help`');
    expect((await run(['info', '--frobnicate'])).err).toBe('error: unknown option --frobnicate\nhint: `sfc info --help` lists the options\n');
    expect((await run(['config', 'print', '--no-min-length-only', '--minLengthOnly'])).code).toBe(0); // negations and camelCase are known
  });

  it('every command has --help with examples', async () => {
    for (const path of allCommands(COMMANDS)) {
      const r = await run([...path, '--help']);
      expect(r.code, path.join(' ')).toBe(0);
      expect(r.out, path.join(' ')).toContain('Examples:');
    }
  });

  it('lists each positional once, under Positionals and not again as a --flag', async () => {
    const positionals = (c: SfcCommand) => [...c.command.matchAll(/[<[]([\w-]+)/g)].map((m) => m[1]!);
    const withPositionals = (list: readonly SfcCommand[], prefix: string[] = []): [string[], string[]][] => list.flatMap((c) => {
      const path = [...prefix, c.command.split(' ')[0]!];
      return [[path, positionals(c)] as [string[], string[]], ...withPositionals(c.subcommands ?? [], path)];
    });
    const checked = withPositionals(COMMANDS).filter(([, names]) => names.length > 0);
    expect(checked.map(([p]) => p.join(' '))).toEqual(expect.arrayContaining(['plot', 'tui', 'convert', 'dict info', 'export neuronpedia']));
    for (const [path, names] of checked) {
      const r = await run([...path, '--help']);
      const section = /\nPositionals:\n([\s\S]*?)\n\n/.exec(r.out)?.[1] ?? '';
      for (const name of names) {
        expect(section, `${path.join(' ')} ${name}`).toMatch(new RegExp(`^  ${name} `, 'm'));
        expect(r.out, `${path.join(' ')} ${name}`).not.toMatch(new RegExp(`--${name}\\b`));
      }
    }
  });

  it('prints the version and a completion script', async () => {
    expect((await run(['--version'])).out).toMatch(/^\d+\.\d+\.\d+\n$/);
    const c = await run(['completion']);
    expect(c.code).toBe(0);
    expect(c.out).toContain('sfc --get-yargs-completions');
    const g = await run(['--get-yargs-completions', 'sfc', 'inf']);
    expect(g.out).toContain('info');
  });
});
