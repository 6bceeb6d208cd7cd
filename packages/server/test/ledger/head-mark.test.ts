import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HEAD_MARK_FILE, HeadMark, HeadMarkUnreadable, readHeadMark } from '../../src/ledger/head-mark.ts';
import { Ed25519Signer, ledgerCrypto } from '../../src/node/crypto.ts';

const SLOT = 32 * 1024;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-mark-'));
  dirs.push(dir);
  return dir;
}

const head = (seq: number) => ({ seq, hash: seq.toString(16).padStart(64, '0') });

describe('head mark file', () => {
  it('is two slots written alternately: a torn newest slot falls back to the other, whole one', async () => {
    const dir = dataDir();
    const { signer } = Ed25519Signer.generate('node-1');
    const mark = HeadMark.open(dir, signer, ledgerCrypto);
    await mark.writeAhead(new Map([['t1', head(5)]]));
    await mark.confirm(new Map([['t1', head(5)]]));
    await mark.writeAhead(new Map([['t1', head(9)]]));
    await mark.close();
    const path = join(dir, HEAD_MARK_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readHeadMark(dir, signer, ledgerCrypto)?.chains.get('t1')).toEqual({
      committed: head(5),
      pending: head(9),
    });
    // The third write (counter 3) went to the second slot; tear it as a power cut would.
    const bytes = readFileSync(path);
    bytes.fill(0x7b, SLOT + 10, SLOT + 200);
    writeFileSync(path, bytes);
    expect(readHeadMark(dir, signer, ledgerCrypto)?.chains.get('t1')).toEqual({ committed: head(5) });
  });

  it("a write-ahead can record earlier commits' heads as committed in the same write", async () => {
    const dir = dataDir();
    const { signer } = Ed25519Signer.generate('node-1');
    const mark = HeadMark.open(dir, signer, ledgerCrypto);
    await mark.writeAhead(new Map([['t1', head(5)]]));
    await mark.writeAhead(new Map([['t2', head(2)]]), new Map([['t1', head(5)]]));
    await mark.writeAhead(new Map([['t1', head(9)]]), new Map([['t2', head(2)]]));
    await mark.close();
    const read = readHeadMark(dir, signer, ledgerCrypto)!;
    expect(read.counter).toBe(3);
    expect(Object.fromEntries(read.chains)).toEqual({
      t1: { committed: head(5), pending: head(9) },
      t2: { committed: head(2) },
    });
  });

  it('refuses a mark signed by another key, or one that holds no whole slot', async () => {
    const dir = dataDir();
    const { signer } = Ed25519Signer.generate('node-1');
    const mark = HeadMark.open(dir, signer, ledgerCrypto);
    await mark.confirm(new Map([['t1', head(3)]]));
    await mark.close();
    const other = Ed25519Signer.generate('node-1').signer;
    expect(() => readHeadMark(dir, other, ledgerCrypto)).toThrow(HeadMarkUnreadable);
    writeFileSync(join(dir, HEAD_MARK_FILE), Buffer.alloc(SLOT * 2, ' '));
    expect(() => readHeadMark(dir, signer, ledgerCrypto)).toThrow(
      /holds no whole head mark signed by this node/,
    );
  });
});
