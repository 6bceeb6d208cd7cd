import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPgDatabase } from '../support/databases.ts';
import { flipByte, removeTempDirs, tempDir } from './fixture.ts';
import { holdfastArgs } from '../support/cli-entry.ts';

const drops: (() => Promise<void>)[] = [];

function holdfast(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, holdfastArgs(...args), {
    encoding: 'utf8',
    env: { ...process.env, CI: '1', NO_COLOR: '1', HOLDFAST_BACKUP_PASSPHRASE: '', ...env },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, all: r.stdout + r.stderr };
}

afterAll(async () => {
  for (const d of drops) await d();
  removeTempDirs();
});

describe('holdfast backup / restore (the real CLI)', () => {
  it('backs up, verifies, refuses a wrong key, and restores from the previous manifest onto PostgreSQL when the newest is damaged', async () => {
    const root = tempDir();
    const hub = join(root, 'hub');
    const dir = join(root, 'backup');
    const pass = join(root, 'pass');
    writeFileSync(pass, 'a passphrase for the test backup\n');
    expect(
      holdfast(['--data-dir', hub, 'init', '--tenant', 'prov-cli', '--node', 'hub-1', '--role', 'hub']).code,
    ).toBe(0);

    const first = holdfast(['--data-dir', hub, 'backup', '--to', dir], {
      HOLDFAST_BACKUP_PASSPHRASE: 'a passphrase for the test backup',
    });
    expect(first.code, first.all).toBe(0);
    expect(first.stdout).toMatch(/manifests\/000001\.json written/);
    expect(
      holdfast([
        '--data-dir',
        hub,
        'nodes',
        'register',
        '--node',
        'site-z',
        '--public-key',
        'MCowBQYDK2VwAyEAx8ZQvSf3oP3ZFvYbnMDbUp1c0a8o9k5BG3y3xR4ZnhE',
      ]).code,
    ).toBe(0);
    const second = holdfast(['--data-dir', hub, 'backup', '--to', dir, '--passphrase-file', pass]);
    expect(second.code, second.all).toBe(0);
    expect(second.stdout).toMatch(
      /000002\.json written \(after manifest 1\): 1 new events checked and stored, 2 in all/,
    );

    const good = holdfast(['backup', 'verify', dir, '--passphrase-file', pass]);
    expect(good.code, good.all).toBe(0);
    expect(good.stdout).toContain('backup verified: manifest 2 restores');

    flipByte(join(dir, 'manifests', '000002.json'), 300);
    const bad = holdfast(['backup', 'verify', dir, '--passphrase-file', pass]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/manifests\/000002\.json .*BAD/);
    expect(bad.stdout).toContain('manifest 1 still restores');

    const db = await createPgDatabase();
    drops.push(db.drop);
    const target = join(root, 'restored');
    const wrong = join(root, 'wrong');
    writeFileSync(wrong, 'not the passphrase at all\n');
    const refused = holdfast([
      'restore',
      '--from',
      dir,
      '--data-dir',
      target,
      '--store',
      'postgres',
      '--database-url',
      db.url,
      '--passphrase-file',
      wrong,
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("the passphrase or key file does not unwrap this backup's data key");
    expect(existsSync(target)).toBe(false);

    const restored = holdfast([
      'restore',
      '--from',
      dir,
      '--data-dir',
      target,
      '--store',
      'postgres',
      '--database-url',
      db.url,
      '--passphrase-file',
      pass,
      // A peer that is down: skipped by name, the restore completes without it.
      '--peer',
      'http://127.0.0.1:9',
    ]);
    expect(restored.code, restored.all).toBe(0);
    expect(restored.stdout).toMatch(/peer http:\/\/127\.0\.0\.1:9 SKIPPED: /);
    expect(restored.stdout).toContain('when it answers, run: holdfast top-up --peer http://127.0.0.1:9');
    expect(restored.stdout).toMatch(/not used: manifests\/000002\.json/);
    expect(restored.stdout).toMatch(
      /restored node hub-1 of tenant prov-cli .* on postgres, from manifests\/000001\.json/,
    );
    expect(restored.stdout).toMatch(/verified from the backup: 1 events in 1 chains/);
    expect(restored.stderr).toMatch(/restoring: 1\/1 events/);
  });
});
