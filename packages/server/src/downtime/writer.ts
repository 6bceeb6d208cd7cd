import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '@holdfast/core';
import type { Logger } from 'pino';

/**
 * Writes the downtime pack to a local folder every N minutes, so a recent one exists on the site's
 * own disk (to print from any machine) even after the site's server itself fails.
 *
 * Each pack is written to a temporary name, flushed to disk, then renamed: a reader (or a crash)
 * never finds a half-written file under a pack's name, so the newest pack is always a whole one.
 * Only the newest `keep` packs are kept: they hold patient data.
 */

const PACK_NAME = /^downtime-pack-(\d{8}T\d{9}Z)\.pdf$/;

export function packFileName(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-11-29T09:00:00.000Z
  return `downtime-pack-${iso.replace(/[-:.]/g, '')}.pdf`;
}

/** Pack files in `dir`, oldest first (their names sort by time). */
export function listPacks(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => PACK_NAME.test(f))
    .sort();
}

export interface PeriodicPackWriterOptions {
  dir: string;
  everyMinutes: number;
  keep: number;
  clock: Clock;
  make(): Promise<Buffer>;
  logger?: Pick<Logger, 'info' | 'error'>;
}

export class PeriodicPackWriter {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(private readonly options: PeriodicPackWriterOptions) {}

  /** Writes one pack now and removes packs beyond `keep`; returns the new file's path. */
  async writeOnce(): Promise<string> {
    const { dir, clock, keep } = this.options;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pdf = await this.options.make();
    const name = packFileName(clock.nowMs());
    const target = join(dir, name);
    const temporary = join(dir, `.${name}.partial`);
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, pdf);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, target);
    // The rename itself must reach the disk, or a power cut could leave only the temporary name.
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    const packs = listPacks(dir);
    for (const old of packs.slice(0, Math.max(0, packs.length - keep)))
      rmSync(join(dir, old), { force: true });
    return target;
  }

  /** Writes one at once, then every `everyMinutes`; a failed write is logged and tried at the next tick. */
  start(): void {
    if (this.timer) return;
    const tick = () => {
      if (this.running) return; // a slow write is not overlapped by the next
      this.running = this.writeOnce()
        .then((file) => this.options.logger?.info({ file }, 'downtime pack written'))
        .catch((error: unknown) =>
          this.options.logger?.error({ problem: (error as Error).message }, 'downtime pack not written'),
        )
        .finally(() => {
          this.running = null;
        });
    };
    tick();
    this.timer = setInterval(tick, this.options.everyMinutes * 60_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
